"""Adam on PyTorch's own fused kernel, without torch.optim's wrapper.

torch.optim's optimizers import torch._dynamo the first time they are used: about a second
at every `autoenc train` start (5% of a 20-second benchmark epoch), for a compiler training
never uses. FusedAdam calls the same kernel (`torch._fused_adam_`, what
`torch.optim.Adam(fused=True)` runs) and keeps the same state_dict format, so training
states saved by either load into either. Devices without the fused kernel get torch.optim.Adam.
"""

import torch

FUSED_DEVICES = ("cpu", "cuda")


class FusedAdam:
    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": 0.0,
                              "amsgrad": False, "maximize": False, "foreach": None, "capturable": False,
                              "differentiable": False, "fused": True, "decoupled_weight_decay": False}]
        self.state: dict[torch.Tensor, dict] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    def _slots(self, p: torch.Tensor) -> dict:
        if p not in self.state:
            self.state[p] = {"step": torch.tensor(0.0, dtype=torch.float32, device=p.device),
                             "exp_avg": torch.zeros_like(p, memory_format=torch.preserve_format),
                             "exp_avg_sq": torch.zeros_like(p, memory_format=torch.preserve_format)}
        return self.state[p]

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        params = [p for p in self.params if p.grad is not None]
        if not params:
            return
        slots = [self._slots(p) for p in params]
        steps = [s["step"] for s in slots]
        torch._foreach_add_(steps, 1)
        beta1, beta2 = group["betas"]
        torch._fused_adam_(params, [p.grad for p in params], [s["exp_avg"] for s in slots],
                           [s["exp_avg_sq"] for s in slots], [], steps, lr=group["lr"], beta1=beta1, beta2=beta2,
                           weight_decay=0.0, eps=group["eps"], amsgrad=False, maximize=False)

    def state_dict(self) -> dict:
        index = {p: i for i, p in enumerate(self.params)}
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"state": {index[p]: dict(s) for p, s in self.state.items()},
                "param_groups": [{**group, "params": list(range(len(self.params)))}]}

    def load_state_dict(self, saved: dict) -> None:
        groups = saved["param_groups"]
        if len(groups) != 1 or len(groups[0]["params"]) != len(self.params):
            raise ValueError("the saved optimizer state is for other parameters")
        keep = ("lr", "betas", "eps")
        self.param_groups[0].update({k: tuple(v) if k == "betas" else v for k, v in groups[0].items() if k in keep})
        self.state = {}
        for i, slots in saved["state"].items():
            p = self.params[int(i)]
            self.state[p] = {"step": torch.as_tensor(slots["step"], dtype=torch.float32).to(p.device).reshape(()),
                             "exp_avg": slots["exp_avg"].to(p.device, p.dtype),
                             "exp_avg_sq": slots["exp_avg_sq"].to(p.device, p.dtype)}


def adam(params, device: torch.device, lr: float, betas: tuple[float, float]):
    """FusedAdam where PyTorch has the fused kernel, torch.optim.Adam elsewhere (e.g. mps)."""
    if device.type in FUSED_DEVICES:
        return FusedAdam(params, lr=lr, betas=betas)
    return torch.optim.Adam(params, lr=lr, betas=betas)

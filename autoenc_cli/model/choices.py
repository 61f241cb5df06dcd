"""The network's choices that settings and the command line name, and the shape facts that checking a picture or a
latent needs, in a module without torch: `autoenc --help` and option parsing stay quick (torch's import is about
1.5 s on a 2-core machine)."""

COLORS = ("rgb", "lab")  # the network's pixel encodings (color.py)
LATENTS = ("relu", "linear")  # relu: the seed's; linear: no ReLU after the encoder's last convolution (opt-in)
DOWNSCALE = 16  # four stride-2 convolutions: latent side = image side / 16
LATENT_CHANNELS = 128  # at channel multiplier 1

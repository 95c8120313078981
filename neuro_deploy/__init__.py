"""neuro-deploy: trained spiking (VLIF) networks to Loihi fixed point, Lava simulation and energy."""

__version__ = "0.1.0"

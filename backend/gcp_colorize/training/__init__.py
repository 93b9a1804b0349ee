"""Training of the project's own GCP weights, on CPU (or CUDA when present).

Stages (paper section 3, plus our stage 0 because no pretrained BigGAN exists here):
  stage0  class-conditional BigGAN G and D on the training photos (the colour prior)
  stage1  GAN encoder E with G frozen (paper eq. 2, 3, 8)
  stage2  correspondence + colorization nets with E, G, D frozen (paper eq. 4-10)
  ablation  the colorization net alone, without the GAN prior features

Modules: `loop` (resumable training loop: budget, checkpoints, progress, log),
`run_state` (checkpoint files and RNG states), `batches` (deterministic, resumable batch
order), `progress`, `ema`, `diffaugment`, `gan_losses`, `feature_losses`,
`patch_discriminator`, `loss_weights` (stage 2's), one module per stage, `directions`
(latent directions of the project's G), `export` (weights directory), `commands`
(`gcp-colorize train ...`).
"""

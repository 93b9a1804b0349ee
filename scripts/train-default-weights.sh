#!/usr/bin/env bash
# Trains the project's own GCP weights from scratch, or resumes wherever the runs stopped
# (every stage checkpoints; rerunning this script continues exactly): stage 0 (BigGAN
# prior) -> stage 1 (encoder) -> the no-prior ablation -> stage 2 (correspondence +
# colorization, started as that ablation with the prior's path closed) beside the ablation
# continued for the same time, then both fine-tuned from the full model's export with
# weight averaging (equal time again), then the full model fine-tuned once more with the
# diversity loss and averaged half and half with its start (the sixth set), then the
# seventh set's steps: the same two again with the classifier's maps as an input (config
# small-semantic), then exports and evaluates them on the development photos. Budgets in
# training hours (env overrides); up to the ablation the defaults are longer than the
# shipped weights' runs, later ones are theirs (weights/default/MODEL_CARD.md records
# them). Run state lives in ~/.cache/gcp-colorize/train/<stage>; needs `gcp-colorize data
# prepare` first.
set -euo pipefail
cd "$(dirname "$0")/.."
gcp=".venv/bin/gcp-colorize"
runs="${XDG_CACHE_HOME:-$HOME/.cache}/gcp-colorize/train"
out="${OUT:-out/trained}"
# Stage 0 in bfloat16 where the CPU has native bf16 (1.45x faster there, emulated much
# slower elsewhere); the other stages have taken bf16 steps only in the tests so far.
# Colour augmentation for D: KID 4.5% lower than without at equal steps (MODEL_CARD.md).
bf16=(); grep -qE 'avx512_bf16|amx_bf16' /proc/cpuinfo && bf16=(--bf16)
"$gcp" train stage0 "${bf16[@]}" --colour-augment --hours "${STAGE0_HOURS:-3.5}" --threads "${THREADS:-1}"
"$gcp" train stage1 --hours "${STAGE1_HOURS:-1}" --threads "${THREADS:-1}"
# The colour losses of the shipped weights (weights/default/MODEL_CARD.md), for both.
losses=(--loss-weight palette=5 --loss-weight rebalanced_ab=1 --loss-weight ab=0.5)
"$gcp" train ablation --hours "${ABLATION_HOURS:-4}" --threads "${THREADS:-1}" "${losses[@]}"
# Equal budgets from here (paper Table 2's comparison): the full model starts as the
# ablation, the ablation goes on in its own run (the start point stays fixed, so both
# resume). One thread each: on a shared 2-core machine two single-thread runs beat one of two.
# Contextual loss 0.1, not the paper's 1: with a weak prior it pulls colours towards the
# GAN's colour blobs (measured: weights/default/MODEL_CARD.md).
"$gcp" train stage2 --init-from-ablation "$runs/ablation" --hours "${STAGE2_HOURS:-1}" \
    --threads 1 "${losses[@]}" --loss-weight contextual=0.1 &
stage2=$!
"$gcp" train ablation --run-dir "$runs/ablation-continued" --init-from "$runs/ablation" \
    --hours "${STAGE2_HOURS:-1}" --threads 1 "${losses[@]}"
wait "$stage2"
"$gcp" train export --out "$out/full"
"$gcp" train export --ablation --ablation-run "$runs/ablation-continued" --out "$out/ablation"
# Fine-tune that export with an average of the weights (the fifth set's last step: single
# checkpoints of batch-4 runs swing, their EMA less), beside the ablation from the same
# colorization net with the prior's path closed, equal time again.
"$gcp" train stage2 --from-weights "$out/full" --run-dir "$runs/stage2-finetune" --ema 0.995 \
    --hours "${FINETUNE_HOURS:-1}" --threads 1 "${losses[@]}" --loss-weight contextual=0.1 &
finetune=$!
"$gcp" train ablation --from-weights "$out/full" --run-dir "$runs/ablation-finetune" --ema 0.995 \
    --hours "${FINETUNE_HOURS:-1}" --threads 1 "${losses[@]}"
wait "$finetune"
"$gcp" train export --colorization-run "$runs/stage2-finetune" --out "$out/fine-tuned"
"$gcp" train export --ablation --ablation-run "$runs/ablation-finetune" --out "$out/ablation-fine-tuned"
# The diversity loss (alternatives of one photo pushed apart, both judged by the PatchGAN)
# without the pull towards the GAN reference's colour blobs; alone it tints whole photos
# and loses top-1 agreement, averaged with its start it keeps them and spreads the
# alternatives (measured: weights/default/MODEL_CARD.md).
"$gcp" train stage2 --from-weights "$out/fine-tuned" --run-dir "$runs/stage2-diversity" \
    --ema 0.995 --hours "${DIVERSITY_HOURS:-1.45}" --threads "${THREADS:-1}" "${losses[@]}" \
    --no-reference-palette --loss-weight contextual=0 --loss-weight adversarial=3 \
    --loss-weight diversity=1
"$gcp" train export --colorization-run "$runs/stage2-diversity" --out "$out/diversity"
"$gcp" train average "$out/fine-tuned" "$out/diversity" --ratio 0.5 --out "$out/averaged"
"$gcp" eval --dev-set --weights "$out/averaged" --baseline "$out/ablation-fine-tuned" \
    --baseline "$out/fine-tuned" --baseline "$out/full" --baseline "$out/ablation" -o "$out/eval"
# The seventh set: the colorization net also reads the classifier's feature maps of the
# gray input through a zero-initialised projection (so it starts from the sixth set's
# colours); better placed colour, not more of it. Then the diversity fine-tune and the
# average once more, from that export.
semantic=(--config small-semantic)
"$gcp" train stage2 "${semantic[@]}" --from-weights "$out/averaged" --run-dir "$runs/stage2-semantic" \
    --ema 0.995 --hours "${SEMANTIC_HOURS:-2.15}" --threads "${THREADS:-1}" "${losses[@]}" \
    --loss-weight contextual=0.1
"$gcp" train export "${semantic[@]}" --colorization-run "$runs/stage2-semantic" --out "$out/semantic"
"$gcp" train stage2 "${semantic[@]}" --from-weights "$out/semantic" --run-dir "$runs/stage2-semantic-diversity" \
    --ema 0.995 --hours "${SEMANTIC_DIVERSITY_HOURS:-0.8}" --threads "${THREADS:-1}" "${losses[@]}" \
    --no-reference-palette --loss-weight contextual=0 --loss-weight adversarial=3 \
    --loss-weight diversity=1
"$gcp" train export "${semantic[@]}" --colorization-run "$runs/stage2-semantic-diversity" \
    --out "$out/semantic-diversity"
"$gcp" train average "$out/semantic" "$out/semantic-diversity" --ratio 0.5 --out "$out/seventh"
"$gcp" eval --dev-set --weights "$out/seventh" --baseline "$out/averaged" --baseline "$out/semantic" \
    --baseline "$out/semantic-diversity" -o "$out/eval-seventh"

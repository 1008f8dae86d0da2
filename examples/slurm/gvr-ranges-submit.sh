#!/bin/bash
# Submit one video as three dependent Slurm jobs: the plan, an array of SEGMENTS range tasks (each
# after the plan succeeded), the join (after every range succeeded).
#   gvr-ranges-submit.sh INPUT OUTPUT SEGMENTS [options deciding the pixels, e.g. -m MODEL --steps 4]
# Set GVR_CODEC (default h264) for the joined output's codec.
set -euo pipefail
IN=${1:?usage: gvr-ranges-submit.sh INPUT OUTPUT SEGMENTS [gvr options]}
OUT=${2:?usage: gvr-ranges-submit.sh INPUT OUTPUT SEGMENTS [gvr options]}
SEGMENTS=${3:?usage: gvr-ranges-submit.sh INPUT OUTPUT SEGMENTS [gvr options]}
shift 3
HERE=$(dirname "$0")
CODEC=${GVR_CODEC:-h264}
plan=$(sbatch --parsable "$HERE/gvr-ranges.sbatch" plan "$IN" "$OUT" --segments "$SEGMENTS" --codec "$CODEC" "$@")
ranges=$(sbatch --parsable --dependency="afterok:$plan" --array="0-$((SEGMENTS - 1))" "$HERE/gvr-ranges.sbatch" range "$IN" "$OUT" --codec "$CODEC" "$@")
join=$(sbatch --parsable --dependency="afterok:$ranges" "$HERE/gvr-ranges.sbatch" join "$IN" "$OUT" --codec "$CODEC")
echo "plan $plan, ranges $ranges, join $join"

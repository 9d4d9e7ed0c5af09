#!/usr/bin/env bash
# A study grid as a SLURM job array: task i of n trains shard i/n of the grid; the study folder is on a file
# system every node sees. Runs are claimed before they train, so a requeued or duplicated task never trains a
# run that another one is training; a finished run is never trained again, an interrupted one resumes.
#
#   sbatch --array=1-8 docs/examples/study-slurm.sh configs/study-paper.yaml
#   mtpeft report runs/study-paper          # once every task has finished (any task may also run it)
#
#SBATCH --job-name=mtpeft-study
#SBATCH --nodes=1
#SBATCH --gpus-per-node=1
#SBATCH --cpus-per-task=8
#SBATCH --time=24:00:00
#SBATCH --requeue
#SBATCH --output=logs/%x-%A_%a.out
set -euo pipefail

config=${1:?usage: sbatch --array=1-N study-slurm.sh STUDY_CONFIG [key=value ...]}
shift
export OMP_NUM_THREADS=${SLURM_CPUS_PER_TASK:-1}
mtpeft study "$config" "$@" --shard "${SLURM_ARRAY_TASK_ID}/${SLURM_ARRAY_TASK_COUNT}"

# One run of the grid with several GPUs instead (a task with 4 GPUs): every run the study has started has its
# resolved config in <study>/configs/<run>.yaml; --resume continues it if it was interrupted, or starts it.
#   torchrun --standalone --nproc_per_node 4 -m mtpeft train runs/study-paper/configs/<run>.yaml --resume

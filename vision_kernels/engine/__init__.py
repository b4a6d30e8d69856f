"""The training engine: one loop for every family (vision_kernels.engine.trainer), checkpoints
(checkpoint), run directories (rundir), distributed runs under torchrun (distributed), evaluation
and prediction from a checkpoint (inference), and the `train`/`data` config sections
(run_config). Imports torch: the CLI imports it only inside the commands that train."""

from vision_kernels.engine.run_config import CheckpointConfig, DataConfig, EmaConfig, ScheduleConfig, TrainConfig

__all__ = ["CheckpointConfig", "DataConfig", "EmaConfig", "ScheduleConfig", "TrainConfig"]

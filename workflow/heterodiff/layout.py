"""Names of the files a study writes, shared by the rules, the aggregate and the results checks."""

# Sections of a run's parameters that decide its training; the others only change evaluation or aggregation.
TRAINING_SECTIONS = ("data", "model", "diffusion", "train", "seed")
# Sections that the evaluation reads; they are recorded in each run's evaluate.yaml.
EVALUATION_SECTIONS = ("evaluate", "diagnostics", "trajectories")

TRAIN_OUTPUTS = ("checkpoints", "train_log.parquet", "spec.yaml")
EVALUATE_OUTPUTS = ("metrics.parquet", "samples.npz", "tracking.parquet", "trajectories.parquet", "evaluate.yaml")
STUDY_TABLES = ("runs", "metrics", "train_log", "timescales", "tracking", "copies", "trajectories")
STUDY_FIGURES = (
    "memorisation",
    "class_share",
    "mean_error",
    "loss",
    "timescales",
    "tau_mem_vs_n",
    "learning_order",
    "score_errors",
    "reverse_times",
    "copy_order",
)

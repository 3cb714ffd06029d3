"""Config validation, defaults, grid expansion and canonical run ids."""

import pytest

from heterodiff.config import ConfigError, canonical_value, expand, validate


def study(**sections):
    return {"studies": {"s": sections}}


def run_ids(config):
    return sorted(expand(validate(config))["s"].runs)


@pytest.mark.parametrize(
    ("first", "second", "spelling"),
    [(0.1, 0.10, "0.1"), (1e-5, 0.00001, "1e-05"), (16, 16.0, "16"), ("1e-5", 0.00001, "1e-05")],
)
def test_canonical_value_one_spelling(first, second, spelling):
    assert canonical_value(validate_number(first)) == spelling
    assert canonical_value(validate_number(second)) == spelling


def validate_number(value):
    """Pass a value through the config loader, as a YAML file would deliver it."""
    config = validate(study(data={"centroid_distance": value}))
    return config["studies"]["s"]["data"]["centroid_distance"]


def test_run_ids_equal_for_equal_values():
    written_one_way = run_ids(study(grid={"train.learning_rate": [0.1, 1e-5]}))
    written_another_way = run_ids(study(grid={"train.learning_rate": [0.10, "0.00001"]}))
    assert written_one_way == written_another_way
    assert written_one_way == ["learning_rate=0.1+seed=0", "learning_rate=1e-05+seed=0"]


def test_run_ids_sorted_by_axis_name():
    ids = run_ids(study(seeds=[3], grid={"data.n_train": [512], "data.imbalance_ratio": [16]}))
    assert ids == ["imbalance_ratio=16+n_train=512+seed=3"]


def test_repeated_leaf_names_use_full_key():
    ids = run_ids(study(grid={"train.device": ["cpu"], "evaluate.device": ["cpu"]}))
    assert ids == ["evaluate.device=cpu+seed=0+train.device=cpu"]


def test_data_seed_axis_not_confused_with_run_seed():
    ids = run_ids(study(grid={"data.seed": [1], "evaluate.noise_seed": [2]}))
    assert ids == ["data.seed=1+noise_seed=2+seed=0"]


def test_data_id_ignores_model_axes():
    studies = expand(validate(study(seeds=[0, 1], grid={"data.n_train": [64, 128], "model.width": [32, 64]})))
    runs = studies["s"].runs
    assert len(runs) == 8
    assert studies["s"].data_ids() == ["n_train=128", "n_train=64"]
    assert runs["n_train=64+seed=1+width=32"].data_id == "n_train=64"


def test_defaults_filled():
    config = validate(study())
    data = config["studies"]["s"]["data"]
    assert data["n_classes"] == 2
    assert data["geometry"] == "simplex"
    assert config["studies"]["s"]["train"]["checkpoint_spacing"] == "log"
    assert config["selected_studies"] == ["s"]


def test_unknown_key_rejected_with_allowed_keys():
    with pytest.raises(ConfigError) as error:
        validate(study(data={"n_clases": 3}))
    message = str(error.value)
    assert "'n_clases'" in message
    assert "studies.s.data" in message
    assert "n_classes" in message  # the allowed keys are listed


def test_unknown_top_level_key_rejected():
    with pytest.raises(ConfigError, match="'sudies'"):
        validate({"sudies": {}, "studies": {"s": {}}})


def test_out_of_range_value_rejected():
    with pytest.raises(ConfigError) as error:
        validate(study(data={"imbalance_ratio": 0.5}))
    message = str(error.value)
    assert "studies.s.data.imbalance_ratio = 0.5" in message
    assert ">= 1" in message


def test_wrong_type_rejected():
    with pytest.raises(ConfigError, match=r"studies\.s\.train\.steps = \"many\".*integer"):
        validate(study(train={"steps": "many"}))


def test_bad_grid_value_names_axis_and_value():
    with pytest.raises(ConfigError) as error:
        expand(validate(study(grid={"data.imbalance_ratio": [1, 0.25]})))
    message = str(error.value)
    assert "studies.s.data.imbalance_ratio = 0.25" in message


def test_unknown_grid_axis_rejected():
    with pytest.raises(ConfigError, match="unknown axis 'data.ratio'"):
        expand(validate(study(grid={"data.ratio": [1]})))


def test_inconsistent_keys_rejected():
    with pytest.raises(ConfigError, match="either weights or imbalance_ratio"):
        expand(validate(study(data={"weights": [1, 2], "imbalance_ratio": 4})))
    with pytest.raises(ConfigError, match="num_inference_steps = 50 exceeds"):
        expand(validate(study(diffusion={"num_train_timesteps": 10}, evaluate={"num_inference_steps": 50})))


def test_unknown_selected_study_rejected():
    with pytest.raises(ConfigError, match="unknown studies"):
        validate({"selected_studies": ["x"], "studies": {"s": {}}})


def test_config_readme_matches_schema():
    from pathlib import Path

    from heterodiff import docs

    readme = Path(__file__).resolve().parents[1] / "config" / "README.md"
    assert readme.read_text() == docs.render(), "regenerate: python -m heterodiff.docs > config/README.md"


def test_list_values_spelled_by_item():
    ids = run_ids(study(grid={"data.variance": [[1, 0.25], [1.0, 4.0]]}))
    assert ids == ["seed=0+variance=1;0.25", "seed=0+variance=1;4"]


def test_run_id_large_float_has_no_plus():
    ids = run_ids(study(grid={"data.centroid_distance": [1e30]}))
    assert ids == ["centroid_distance=1e30+seed=0"]

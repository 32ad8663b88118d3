"""terraform/ as files: module layout, documented variables, contract names, no emulator.

What the inputs accept and refuse is tested by Terraform itself: terraform/tests/
(tests/e2e/test_terraform_native.py runs it).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from common.config import ConfigError
from reco_api import settings
from tf import module_docs, moto_override, offline

ROOT = Path(__file__).resolve().parents[2]
TERRAFORM = ROOT / "terraform"
MODULES = sorted(p for p in (TERRAFORM / "modules").iterdir() if p.is_dir())
ALL_DIRS = [TERRAFORM, *MODULES]
TF_FILES = sorted(TERRAFORM.rglob("*.tf"))


def _items(directory: Path, kind: str) -> dict[str, module_docs.Item]:
    file = "variables.tf" if kind == "variable" else "outputs.tf"
    text = (directory / file).read_text(encoding="utf-8")
    return {item.name: item for item in module_docs.parse_blocks(text, kind)}


def test_there_are_modules_for_each_part() -> None:
    names = {m.name for m in MODULES}
    # Named after the function folders they deploy (functions/recommendations, ...).
    assert {"recommendations", "update_traits", "segment_kinesis_destination"} <= names
    functions = {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").is_file()}
    assert functions <= names


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_module_has_the_standard_files(module: Path) -> None:
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"):
        assert (module / name).is_file(), f"{module.name}/{name}"
    assert "required_providers" in (module / "versions.tf").read_text()


@pytest.mark.parametrize("directory", ALL_DIRS, ids=lambda p: p.name)
def test_every_variable_and_output_is_described_and_typed(directory: Path) -> None:
    variables = _items(directory, "variable")
    assert variables
    for name, v in variables.items():
        assert len(v.description) >= 10, f"{directory.name}: variable {name} has no description"
        assert "type" in v.args, f"{directory.name}: variable {name} has no type"
        assert v.args["type"] != "any", f"{directory.name}: variable {name} is untyped"
    for name, o in _items(directory, "output").items():
        assert len(o.description) >= 10, f"{directory.name}: output {name} has no description"


def test_readme_tables_match_the_code() -> None:
    assert module_docs.main(["--check"]) == 0, (
        "run `PYTHONPATH=scripts .venv/bin/python -m tf.module_docs`"
    )


def test_readme_tables_list_inputs_defaults_and_sensitivity() -> None:
    tables = module_docs.render(TERRAFORM)
    assert "| `personalize_campaign_arn` |" in tables
    assert re.search(r"\| `api_key` \| .* \| yes \|", tables)
    assert re.search(r"\| `num_results` \| .* \| `25` \| no \|", tables)


def test_object_inputs_get_one_row_per_attribute_with_its_default() -> None:
    tables = module_docs.render(TERRAFORM)
    assert re.search(
        r"\| `update_traits` \| The update_traits function .* \| `object` \| `\{\}` \| no \|",
        tables,
    )
    assert re.search(
        r"\| `update_traits.batch_size` \| Maximum Kinesis .* \| `number` \| `100` \| no \|",
        tables,
    )
    assert re.search(r"\| `api.quota_limit` \| .* \| `number` \| `null` \| no \|", tables)
    # A module's object input (defaults applied by the root): its attributes are required.
    module = module_docs.render(TERRAFORM / "modules" / "update_traits")
    assert re.search(r"\| `settings.batch_size` \|  \| `number` \|  \| yes \|", module)


def test_an_object_input_must_describe_each_of_its_attributes(tmp_path: Path) -> None:
    (tmp_path / "outputs.tf").write_text("")
    (tmp_path / "variables.tf").write_text(
        'variable "x" {\n'
        "  description = <<-EOT\n"
        "    The whole.\n"
        "    - a: The first.\n"
        "  EOT\n"
        "  type = object({\n"
        "    a = optional(number, 1)\n"
        '    b = optional(string, "two")\n'
        "  })\n"
        "}\n"
    )
    with pytest.raises(ValueError, match=r"x describes \['a'\], has \['a', 'b'\]"):
        module_docs.render(tmp_path)


def test_root_has_the_contract_inputs_and_outputs() -> None:
    variables = _items(TERRAFORM, "variable")
    outputs = _items(TERRAFORM, "output")
    for name in ("personalize_campaign_arn", "personalize_tracking_id", "personalize_filter_arn",
                 "segment_space_id", "segment_external_ids", "name_prefix", "tags"):  # fmt: skip
        assert name in variables, name
    assert variables["personalize_campaign_arn"].required
    assert variables["segment_external_ids"].args["type"] == "list(string)"
    contract_outputs = (
        "api_url", "api_key", "kinesis_stream_name", "kinesis_stream_arn",
        "segment_role_arn", "dead_letter_queue_url", "segment_destination_settings",
    )  # fmt: skip
    for name in contract_outputs:
        assert name in outputs, name
    assert outputs["api_key"].sensitive
    assert not outputs["api_url"].sensitive


def test_runtime_and_architecture_default_to_the_contract() -> None:
    variables = _items(TERRAFORM, "variable")
    assert variables["lambda_runtime"].args["default"] == '"python3.13"'
    assert variables["lambda_architecture"].args["default"] == '"arm64"'


def test_secret_inputs_are_sensitive_ephemeral_and_optional() -> None:
    variables = _items(TERRAFORM, "variable")
    for name in ("segment_write_key", "segment_profile_token"):
        v = variables[name]
        assert v.sensitive and v.args.get("ephemeral") == "true", name
        assert v.args["default"] == "null", name


def test_secret_values_are_written_only_when_the_parameter_is_created() -> None:
    # A changing write-only version makes Terraform write value_wo again, and it cannot tell
    # whether a value was given: without one it would put the placeholder over a real key.
    text = (TERRAFORM / "modules" / "segment_secrets" / "main.tf").read_text()
    # Every parameter: the write key, the profile token, the log pseudonym key.
    parameters = text.count('resource "aws_ssm_parameter"')
    assert parameters == 3
    assert text.count("value_wo_version = local.value_version") == parameters
    assert "value_version = 1" in text
    for directory in (TERRAFORM, TERRAFORM / "modules" / "segment_secrets"):
        assert not any("version" in name for name in _items(directory, "variable"))


def test_the_api_never_resets_the_account_logging_role_on_destroy() -> None:
    api = (TERRAFORM / "modules" / "recommendations" / "main.tf").read_text()
    assert "reset_on_delete =" not in api


# The api.cors_allow_origins values the root accepts (terraform/tests/validations.tftest.hcl,
# "accepts_" runs): the function must read them as such, or the plan would pass and the
# deployed API answer 500 configuration_error.
@pytest.mark.parametrize(
    "origins",
    [
        ["*"],
        ["https://shop.example.com"],
        ["https://shop.example.com", "http://localhost:3000", "https://shop.example.com"],
    ],
)
def test_cors_origins_terraform_accepts_are_read_as_such_by_the_function(
    origins: list[str],
) -> None:
    env = {
        "PERSONALIZE_CAMPAIGN_ARN": "arn:aws:personalize:us-east-1:123456789012:campaign/c",
        "CORS_ALLOW_ORIGIN": ",".join(origins),
    }
    assert settings.load(env).cors_origins == tuple(dict.fromkeys(origins))


def test_the_function_refuses_what_terraform_refuses_for_cors() -> None:
    for value in ("https://shop.example.com/", "*,https://shop.example.com", "shop.example.com"):
        env = {
            "PERSONALIZE_CAMPAIGN_ARN": "arn:aws:personalize:us-east-1:123456789012:campaign/c",
            "CORS_ALLOW_ORIGIN": value,
        }
        with pytest.raises(ConfigError) as caught:
            settings.load(env)
        assert caught.value.name == "CORS_ALLOW_ORIGIN", value


def test_no_emulator_endpoint_is_baked_into_the_configuration() -> None:
    for path in TF_FILES:
        text = path.read_text()
        assert not path.name.endswith("_override.tf"), path
        for needle in (r"endpoints\s*\{", r"127\.0\.0\.1", "localhost", "moto", "skip_"):
            assert not re.search(needle, text), f"{path.relative_to(ROOT)} matches {needle!r}"


def test_every_checkov_skip_is_inline_with_a_reason() -> None:
    skips = []
    for path in TF_FILES:
        for line in path.read_text().splitlines():
            if "checkov" in line:
                match = re.fullmatch(r"\s*#checkov:skip=(CKV2?_AWS_\d+):(.{30,})", line)
                assert match, f"{path.relative_to(ROOT)}: malformed or unexplained skip: {line}"
                skips.append(match.group(1))
    assert skips
    assert not (ROOT / "terraform" / ".checkov.yaml").exists()  # no run-wide skips


def test_providers_are_pinned_and_locked() -> None:
    versions = (TERRAFORM / "versions.tf").read_text()
    assert re.search(r'version\s*=\s*"~> 5\.100"', versions)
    lock = (TERRAFORM / ".terraform.lock.hcl").read_text()
    assert 'version     = "5.100.0"' in lock


def test_tfvars_example_sets_every_required_input() -> None:
    example = (TERRAFORM / "terraform.tfvars.example").read_text()
    for name, v in _items(TERRAFORM, "variable").items():
        if v.required:
            assert re.search(rf"^{name}\s*=", example, flags=re.M), name
    assert "write_key =" not in example.replace("# ", "")  # secrets never in the file


def test_moto_override_points_every_service_at_loopback_only() -> None:
    text = moto_override.render("http://127.0.0.1:5123")
    services = ("apigateway", "lambda", "iam", "kinesis", "sqs", "ssm", "sts", "logs", "dynamodb")
    for service in services:
        assert re.search(rf'\b{service}\s+= "http://127\.0\.0\.1:5123"', text), service
    with pytest.raises(ValueError, match="loopback"):
        moto_override.render("https://kinesis.us-east-1.amazonaws.com")


def test_offline_cli_config_installs_only_from_the_mirror() -> None:
    text = offline.cli_config_text(Path("/opt/tf-plugins"))
    assert 'path    = "/opt/tf-plugins"' in text
    assert "filesystem_mirror" in text
    assert "direct" not in text  # no fallback to the registry
    assert "disable_checkpoint = true" in text
    with pytest.raises(ValueError, match="unsupported"):
        offline.cli_config_text(Path('/tmp/"quoted"'))

"""Helpers for the template tests: template.yaml loaded with CloudFormation's short-form tags, and
a small evaluator of parameters, conditions, Fn::If, Fn::FindInMap and Ref that shows what a value
becomes for a given set of parameter values (what CloudFormation would deploy)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"
EVENTS_DIR = REPO_ROOT / "events"


class CfnLoader(yaml.SafeLoader):
    """A YAML loader that turns !Ref, !GetAtt, !Sub, !If, ... into their long-form dicts."""


def _construct_tag(loader: CfnLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if tag_suffix == "Ref":
        return {"Ref": value}
    if tag_suffix == "Condition":
        return {"Condition": value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        resource, _, attribute = value.partition(".")
        return {"Fn::GetAtt": [resource, attribute]}
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=CfnLoader)  # noqa: S506 (SafeLoader subclass)


NO_VALUE = object()


class Evaluator:
    """Resolve template values for given parameter values (defaults for the rest)."""

    def __init__(self, template: dict[str, Any], **overrides: Any) -> None:
        self.template = template
        self.parameters = {name: spec.get("Default") for name, spec in template["Parameters"].items()}
        unknown = set(overrides) - set(self.parameters)
        assert not unknown, f"no such parameters: {unknown}"
        self.parameters.update(overrides)
        self.conditions: dict[str, Any] = {}
        for name, expr in template.get("Conditions", {}).items():  # a condition may name an earlier one
            self.conditions[name] = self.value(expr)

    def condition(self, name: str) -> bool:
        return bool(self.conditions[name])

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref":
                if arg == "AWS::NoValue":
                    return NO_VALUE
                if arg in self.parameters:
                    return self.parameters[arg]
                return {"Ref": arg}  # a resource or pseudo parameter: stays symbolic
            if key == "Condition":
                return self.conditions[arg]
            if key == "Fn::If":
                name, when_true, when_false = arg
                return self.value(when_true if self.conditions[name] else when_false)
            if key == "Fn::Equals":
                left, right = (self.value(a) for a in arg)
                return str(left) == str(right)
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Fn::FindInMap":
                name, top, second = (self.value(a) for a in arg)
                return self.template["Mappings"][name][str(top)][second]
        return {k: v for k, v in ((k, self.value(v)) for k, v in node.items()) if v is not NO_VALUE}

"""Stands in for CloudFormation: template.yaml as SAM's translator turns it into CloudFormation, resolved.

SAM's own rules (Globals, an SQS event becoming an ``AWS::Lambda::EventSourceMapping``, layers,
policies) come from aws-sam-translator, the library ``sam validate`` runs, offline with its
bundled managed-policy map. Only what no library does is written here: parameter values checked
as CloudFormation checks them (``--parameter-overrides`` semantics), conditions and the
intrinsics the template uses resolved against the resources the local stack created
(:class:`PhysicalResource`, CloudFormation's Ref and GetAtt values), creation order, and the
function's settings (:meth:`Template.function`) for the ESM emulator.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import boto3
from samtranslator.internal.managed_policies import get_bundled_managed_policy_map
from samtranslator.model.exceptions import InvalidDocumentException
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator
from samtranslator.yaml_helper import yaml_parse as load_yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"
DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_STACK_NAME = "payments-drain-local"
LOCAL_BUCKET = "local-folder"  # SAM accepts S3 code locations only: a local folder stands in as one

__all__ = ["Template", "TemplateError", "PhysicalResource", "load_yaml", "parse_overrides"]


class TemplateError(ValueError):
    """The template (or an override) cannot be evaluated."""


class Unresolved(TemplateError):
    """A Ref or GetAtt to a resource that has no physical value (yet)."""


@dataclass
class PhysicalResource:
    """What CloudFormation would know about one created resource."""

    ref: str  # the value of !Ref
    attributes: dict[str, str] = field(default_factory=dict)  # the values of !GetAtt X.Attr


Physical = Mapping[str, PhysicalResource]
_NO_VALUE = object()


@dataclass(frozen=True)
class SqsEventSource:
    name: str  # the AWS::Lambda::EventSourceMapping's logical id
    queue_logical_id: str
    batch_size: int
    maximum_batching_window_seconds: int
    function_response_types: tuple[str, ...]
    maximum_concurrency: int | None


@dataclass(frozen=True)
class FunctionSettings:
    logical_id: str
    handler: str
    code_uri: Path
    timeout: int
    memory_size: int
    runtime: str | None
    layer_dirs: tuple[Path, ...]
    environment: dict[str, str]
    sqs_event: SqsEventSource | None


@dataclass(frozen=True)
class QueueSettings:
    logical_id: str
    visibility_timeout: int
    max_receive_count: int | None
    dead_letter_logical_id: str | None


def translate(sam: dict, parameters: Mapping[str, Any], region: str) -> dict:
    """Plain CloudFormation, as ``sam validate`` obtains it (local folders stand in as S3 URIs)."""
    sam = copy.deepcopy(sam)
    for resource in (sam.get("Resources") or {}).values():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str):
                props[key] = f"s3://{LOCAL_BUCKET}/{props[key]}"
    translator = Translator(
        managed_policy_map=get_bundled_managed_policy_map("aws"),
        sam_parser=Parser(),
        boto_session=boto3.session.Session(region_name=region),
    )
    try:
        return translator.translate(sam, parameter_values=dict(parameters))
    except InvalidDocumentException as error:
        raise TemplateError("; ".join(str(cause) for cause in error.causes)) from None
    finally:
        translator.metrics.publish()  # to its offline publisher, which drops them


class Template:
    def __init__(
        self,
        path: str | Path = DEFAULT_TEMPLATE,
        overrides: Mapping[str, Any] | None = None,
        *,
        region: str = DEFAULT_REGION,
        account_id: str = DEFAULT_ACCOUNT_ID,
        stack_name: str = DEFAULT_STACK_NAME,
        text: str | None = None,
    ) -> None:
        self.path = Path(path).resolve()
        self.base_dir = self.path.parent
        sam = load_yaml(text if text is not None else self.path.read_text())
        if not isinstance(sam, dict) or "Resources" not in sam:
            raise TemplateError(f"{self.path}: not a CloudFormation template (no Resources)")
        self.region, self.account_id, self.stack_name = region, account_id, stack_name
        self.parameters = _resolve_parameters(sam.get("Parameters") or {}, dict(overrides or {}))
        self.cfn = translate(sam, self.parameters, region)
        self.resources: dict[str, dict] = self.cfn["Resources"]
        self.mappings: dict = self.cfn.get("Mappings") or {}
        self._condition_defs: dict = self.cfn.get("Conditions") or {}
        self._conditions: dict[str, bool] = {}
        self.conditions = {name: self.condition(name) for name in self._condition_defs}

    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            if name not in self._condition_defs:
                raise TemplateError(f"unknown condition {name}")
            self._conditions[name] = _as_bool(self.resolve(self._condition_defs[name]))
        return self._conditions[name]

    def resource_enabled(self, logical_id: str) -> bool:
        cond = self.resources[logical_id].get("Condition")
        return True if cond is None else self.condition(cond)

    def _ref(self, name: str, physical: Physical) -> Any:
        pseudo = {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        for known in (pseudo, self.parameters):
            if name in known:
                return known[name]
        if name in physical:
            return physical[name].ref
        if name in self.resources:
            raise Unresolved(f"Ref {name}: resource has no physical value (not created locally)")
        raise TemplateError(f"Ref {name}: no such parameter or resource")

    def _getatt(self, logical_id: str, attr: str, physical: Physical) -> Any:
        if logical_id not in physical:
            raise Unresolved(f"GetAtt {logical_id}.{attr}: resource has no physical value")
        if attr not in physical[logical_id].attributes:
            raise TemplateError(f"GetAtt {logical_id}.{attr}: unknown attribute")
        return physical[logical_id].attributes[attr]

    def _sub(self, arg: Any, physical: Physical) -> str:
        text, variables = (arg[0], self.resolve(arg[1], physical)) if isinstance(arg, list) else (arg, {})

        def replace(match: re.Match) -> str:
            expr = match.group(1).strip()
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            if expr in variables:
                return _scalar_str(variables[expr])
            if "." in expr and not expr.startswith("AWS::"):
                return _scalar_str(self._getatt(*expr.split(".", 1), physical))
            return _scalar_str(self._ref(expr, physical))

        return re.sub(r"\$\{([^}]*)\}", replace, text)

    def resolve(self, value: Any, physical: Physical | None = None) -> Any:
        """Evaluate every intrinsic in ``value``; ``AWS::NoValue`` removes keys and items."""
        result = self._resolve(value, physical or {})
        return None if result is _NO_VALUE else result

    def _resolve(self, value: Any, physical: Physical) -> Any:
        if isinstance(value, list):
            return [v for v in (self._resolve(item, physical) for item in value) if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self._ref(arg, physical)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._fn(key, arg, physical)
        resolved = {k: self._resolve(v, physical) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not _NO_VALUE}

    def _fn(self, key: str, arg: Any, physical: Physical) -> Any:
        r = lambda v: self._resolve(v, physical)  # noqa: E731
        functions = {
            "Fn::GetAtt": lambda a: self._getatt(
                *(a.split(".", 1) if isinstance(a, str) else map(r, a)), physical
            ),
            "Fn::Sub": lambda a: self._sub(a, physical),
            "Fn::If": lambda a: r(a[1]) if self.condition(a[0]) else r(a[2]),
            "Fn::FindInMap": lambda a: self._find_in_map(*(_scalar_str(r(x)) for x in a[:3])),
            "Fn::Equals": lambda a: _scalar_str(r(a[0])) == _scalar_str(r(a[1])),
            "Fn::Not": lambda a: not _as_bool(r(a[0] if isinstance(a, list) else a)),
            "Fn::And": lambda a: all(_as_bool(r(c)) for c in a),
            "Fn::Or": lambda a: any(_as_bool(r(c)) for c in a),
            "Fn::Select": lambda a: r(a[1])[int(r(a[0]))],
            "Fn::Join": lambda a: r(a[0]).join(_scalar_str(i) for i in r(a[1])),
            "Fn::Split": lambda a: r(a[1]).split(r(a[0])),
        }
        if key not in functions:
            raise TemplateError(f"{key} is not supported by the local template reader")
        return functions[key](arg)

    def _find_in_map(self, name: str, top: str, second: str) -> Any:
        try:
            return copy.deepcopy(self.mappings[name][top][second])
        except KeyError:
            raise TemplateError(f"FindInMap {name}/{top}/{second}: no such entry") from None

    def _folder(self, location: Any) -> Path:
        """The local folder of a function's Code or a layer's Content (as :func:`translate` left it)."""
        location = self.resolve(location)
        if not (isinstance(location, dict) and location.get("S3Bucket") == LOCAL_BUCKET):
            raise TemplateError(f"only a local CodeUri/ContentUri is supported, not {location!r}")
        return (self.base_dir / location["S3Key"]).resolve()

    def properties(self, logical_id: str, physical: Physical | None = None) -> dict:
        return self.resolve(self.resources[logical_id].get("Properties") or {}, physical or {})

    def outputs(self, physical: Physical) -> dict[str, str]:
        """The stack's outputs as ``aws cloudformation describe-stacks`` shows them (name -> value),
        resolved against the resources created (an output whose condition is false is left out)."""
        return {
            name: _scalar_str(self.resolve(spec["Value"], physical))
            for name, spec in (self.cfn.get("Outputs") or {}).items()
            if "Condition" not in spec or self.condition(spec["Condition"])
        }

    def function(
        self, logical_id: str = "DrainFunction", physical: Physical | None = None
    ) -> FunctionSettings:
        """The function's settings; its environment needs ``physical`` for Refs to resources."""
        resource = self.resources.get(logical_id) or {}
        if resource.get("Type") != "AWS::Lambda::Function":
            raise TemplateError(f"no function {logical_id} in {self.path}")
        physical = physical or {}
        raw = resource.get("Properties") or {}
        value = lambda key, default=None: self.resolve(raw.get(key, default), physical)  # noqa: E731
        variables = value("Environment", {}).get("Variables") or {}
        layers = [_referenced_resource(layer) for layer in raw.get("Layers") or []]
        return FunctionSettings(
            logical_id=logical_id,
            handler=value("Handler"),
            code_uri=self._folder(value("Code")),
            timeout=int(value("Timeout", 3)),
            memory_size=int(value("MemorySize", 128)),
            runtime=value("Runtime"),
            # Layers given as ARNs (e.g. the public Powertools layer) are satisfied by the venv.
            layer_dirs=tuple(
                self._folder(self.resources[lid]["Properties"]["Content"])
                for lid in layers
                if lid in self.resources
            ),
            environment={k: _scalar_str(v) for k, v in variables.items()},
            sqs_event=self._sqs_event(logical_id, physical),
        )

    def _sqs_event(self, function_id: str, physical: Physical) -> SqsEventSource | None:
        """The enabled event source mapping from an SQS queue of the template to the function."""
        for lid, resource in self.resources.items():
            if resource["Type"] != "AWS::Lambda::EventSourceMapping" or not self.resource_enabled(lid):
                continue
            raw = resource.get("Properties") or {}
            queue = _referenced_resource(raw.get("EventSourceArn"))
            if _referenced_resource(raw.get("FunctionName")) != function_id or queue not in self.resources:
                continue
            enabled = _as_bool(self.resolve(raw.get("Enabled", True)))
            if self.resources[queue].get("Type") != "AWS::SQS::Queue" or not enabled:
                continue
            settings = {k: v for k, v in raw.items() if k not in ("EventSourceArn", "FunctionName")}
            props = self.resolve(settings, physical)
            concurrency = (props.get("ScalingConfig") or {}).get("MaximumConcurrency")
            return SqsEventSource(
                name=lid,
                queue_logical_id=queue,
                batch_size=int(props.get("BatchSize", 10)),
                maximum_batching_window_seconds=int(props.get("MaximumBatchingWindowInSeconds", 0)),
                function_response_types=tuple(props.get("FunctionResponseTypes") or ()),
                maximum_concurrency=int(concurrency) if concurrency not in (None, "") else None,
            )
        return None

    def queue(self, logical_id: str) -> QueueSettings:
        """The queue's own settings (parameters resolved; its dead-letter queue by logical id)."""
        raw = self.resources[logical_id].get("Properties") or {}
        redrive = raw.get("RedrivePolicy") or {}
        count = self.resolve(redrive.get("maxReceiveCount"))
        return QueueSettings(
            logical_id=logical_id,
            visibility_timeout=int(self.resolve(raw.get("VisibilityTimeout", 30))),
            max_receive_count=int(count) if count is not None else None,
            dead_letter_logical_id=_referenced_resource(redrive.get("deadLetterTargetArn")),
        )


class _LogicalEcho(dict):
    """A physical mapping in which a resource's Ref is its logical id and GetAtt X.A is "X.A"."""

    def __init__(self, template: Template) -> None:
        super().__init__({lid: PhysicalResource(lid, _Echo(lid)) for lid in template.resources})


class _Echo(dict):
    def __init__(self, lid: str) -> None:
        super().__init__()
        self.lid = lid

    def __contains__(self, attr: object) -> bool:
        return True

    def __missing__(self, attr: str) -> str:
        return f"{self.lid}.{attr}"


def _resolve_parameters(specs: dict, overrides: dict) -> dict[str, Any]:
    """Defaults plus overrides, checked as CloudFormation checks them."""
    unknown = sorted(set(overrides) - set(specs))
    if unknown:
        raise TemplateError(f"unknown parameter(s) {unknown}; the template has {sorted(specs)}")
    values: dict[str, Any] = {}
    for name, spec in specs.items():
        if name not in overrides and "Default" not in spec:
            raise TemplateError(f"parameter {name} has no Default and no override")
        value, kind = overrides.get(name, spec.get("Default")), spec.get("Type", "String")
        if kind == "CommaDelimitedList" or kind.startswith("List<"):
            values[name] = [v.strip() for v in value.split(",")] if isinstance(value, str) else list(value)
            continue
        value = values[name] = _scalar_str(value)
        if "AllowedValues" in spec and value not in [str(v) for v in spec["AllowedValues"]]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {spec['AllowedValues']}")
        if kind == "String" and "AllowedPattern" in spec and not re.fullmatch(spec["AllowedPattern"], value):
            raise TemplateError(f"parameter {name}={value!r} does not match {spec['AllowedPattern']}")
        if kind == "Number":
            if not re.fullmatch(r"-?\d+(\.\d+)?", value):
                raise TemplateError(f"parameter {name}={value!r} is not a number")
            if float(value) < float(spec.get("MinValue", "-inf")):
                raise TemplateError(f"parameter {name}={value} is below MinValue {spec['MinValue']}")
            if float(value) > float(spec.get("MaxValue", "inf")):
                raise TemplateError(f"parameter {name}={value} is above MaxValue {spec['MaxValue']}")
    return values


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """``["Name=Value", ...]`` (or one ``"A=1 B=2"`` string, as sam deploy accepts) -> dict."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split():
            if "=" not in part:
                raise TemplateError(f"parameter override {part!r} is not NAME=VALUE")
            name, value = part.split("=", 1)
            out[name] = value
    return out


def _referenced_resource(expr: Any) -> str | None:
    if isinstance(expr, dict) and len(expr) == 1:
        ((key, arg),) = expr.items()
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt":
            return arg.split(".", 1)[0] if isinstance(arg, str) else arg[0]
    return None


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise TemplateError(f"not a condition value: {value!r}")


def _scalar_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)

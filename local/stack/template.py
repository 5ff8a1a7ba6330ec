"""Read template.yaml as CloudFormation/SAM would, for the local stack.

The template is the single source of truth for every setting the local stack uses: the local
stack never hard-codes a batch size, a timeout or an environment variable. This module:

- loads YAML with CloudFormation's short-form tags (``!Ref``, ``!GetAtt``, ``!Sub`` ...);
- resolves parameters from their defaults plus overrides (``--parameter-overrides`` semantics:
  unknown names are an error, values are strings checked against AllowedValues/MinValue/MaxValue);
- evaluates conditions and the intrinsics (Ref, Fn::GetAtt, Fn::Sub, Fn::If, Fn::FindInMap,
  Fn::Equals, Fn::Not, Fn::And, Fn::Or, Fn::Select, Fn::Join, Fn::Split, Condition) and
  pseudo parameters, including ``AWS::NoValue``;
- applies the SAM ``Globals`` section to ``AWS::Serverless::Function`` resources;
- exposes the drain function's settings (:meth:`Template.function`) with its environment
  resolved against a mapping of logical id -> physical resource (:class:`Physical`).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEMPLATE = REPO_ROOT / "template.yaml"

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"  # moto's default account
DEFAULT_STACK_NAME = "payments-drain-local"


class TemplateError(ValueError):
    """The template (or an override) cannot be evaluated."""


# --------------------------------------------------------------------------- YAML loading
class _CfnLoader(yaml.SafeLoader):
    pass


_SHORT_TAGS = {
    "Ref": "Ref",
    "Condition": "Condition",
    "GetAtt": "Fn::GetAtt",
    "Sub": "Fn::Sub",
    "If": "Fn::If",
    "FindInMap": "Fn::FindInMap",
    "Equals": "Fn::Equals",
    "Not": "Fn::Not",
    "And": "Fn::And",
    "Or": "Fn::Or",
    "Select": "Fn::Select",
    "Join": "Fn::Join",
    "Split": "Fn::Split",
    "Base64": "Fn::Base64",
    "GetAZs": "Fn::GetAZs",
    "ImportValue": "Fn::ImportValue",
    "Cidr": "Fn::Cidr",
    "Length": "Fn::Length",
    "ToJsonString": "Fn::ToJsonString",
}


def _make_constructor(fn_name: str):
    def construct(loader: yaml.Loader, node: yaml.Node) -> dict:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if fn_name == "Fn::GetAtt" and isinstance(value, str):
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {fn_name: value}

    return construct


for _tag, _fn in _SHORT_TAGS.items():
    _CfnLoader.add_constructor(f"!{_tag}", _make_constructor(_fn))


def load_yaml(text: str) -> dict:
    # _CfnLoader is a SafeLoader subclass (it only adds the CloudFormation short-form tags)
    return yaml.load(text, Loader=_CfnLoader)  # noqa: S506  # nosec B506


# --------------------------------------------------------------------------- physical mapping
@dataclass
class PhysicalResource:
    """What CloudFormation would know about one created resource."""

    ref: str  # the value of !Ref
    attributes: dict[str, str] = field(default_factory=dict)  # the values of !GetAtt X.Attr


Physical = Mapping[str, PhysicalResource]

_NO_VALUE = object()


# --------------------------------------------------------------------------- function settings
@dataclass(frozen=True)
class SqsEventSource:
    name: str
    queue_logical_id: str
    batch_size: int
    maximum_batching_window_seconds: int
    function_response_types: tuple[str, ...]
    maximum_concurrency: int | None
    enabled: bool


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


# --------------------------------------------------------------------------- the template
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
        raw = load_yaml(text if text is not None else self.path.read_text())
        if not isinstance(raw, dict) or "Resources" not in raw:
            raise TemplateError(f"{self.path}: not a CloudFormation template (no Resources)")
        self.raw = raw
        self.region = region
        self.account_id = account_id
        self.stack_name = stack_name
        self.mappings: dict = raw.get("Mappings") or {}
        self.parameters = self._resolve_parameters(raw.get("Parameters") or {}, dict(overrides or {}))
        self.resources: dict[str, dict] = self._apply_globals(raw.get("Resources") or {}, raw.get("Globals") or {})
        self._condition_defs: dict = raw.get("Conditions") or {}
        self._conditions: dict[str, bool] = {}
        self.conditions = {name: self.condition(name) for name in self._condition_defs}

    # ---------------------------------------------------------------- parameters
    @staticmethod
    def _check_parameter(name: str, spec: dict, value: str) -> str:
        allowed = spec.get("AllowedValues")
        if allowed is not None and value not in [str(v) for v in allowed]:
            raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
        ptype = spec.get("Type", "String")
        if ptype == "Number":
            try:
                number = float(value)
            except ValueError:
                raise TemplateError(f"parameter {name}={value!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise TemplateError(f"parameter {name}={value} is below MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise TemplateError(f"parameter {name}={value} is above MaxValue {spec['MaxValue']}")
        pattern = spec.get("AllowedPattern")
        if pattern and ptype == "String" and not re.fullmatch(pattern, value):
            raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")
        return value

    def _resolve_parameters(self, specs: dict, overrides: dict) -> dict[str, Any]:
        unknown = sorted(set(overrides) - set(specs))
        if unknown:
            raise TemplateError(f"unknown parameter(s) {unknown}; the template has {sorted(specs)}")
        values: dict[str, Any] = {}
        for name, spec in specs.items():
            spec = spec or {}
            if name in overrides:
                value = overrides[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default and no override")
            ptype = spec.get("Type", "String")
            if ptype.startswith("List<") or ptype == "CommaDelimitedList":
                if isinstance(value, str):
                    value = [v.strip() for v in value.split(",")] if value else []
                values[name] = [str(v) for v in value]
            else:
                values[name] = self._check_parameter(name, spec, _scalar_str(value))
        return values

    # ---------------------------------------------------------------- SAM Globals
    @staticmethod
    def _merge_global(global_value: Any, local_value: Any) -> Any:
        if isinstance(global_value, dict) and isinstance(local_value, dict):
            if len(local_value) == 1 and next(iter(local_value)).startswith(("Fn::", "Ref")):
                return local_value  # an intrinsic replaces, it does not merge
            merged = dict(global_value)
            for key, value in local_value.items():
                merged[key] = Template._merge_global(global_value[key], value) if key in global_value else value
            return merged
        if isinstance(global_value, list) and isinstance(local_value, list):
            return global_value + local_value
        return local_value

    def _apply_globals(self, resources: dict, globals_: dict) -> dict:
        resources = copy.deepcopy(resources)
        kinds = {
            "AWS::Serverless::Function": "Function",
            "AWS::Serverless::Api": "Api",
            "AWS::Serverless::HttpApi": "HttpApi",
            "AWS::Serverless::SimpleTable": "SimpleTable",
            "AWS::Serverless::StateMachine": "StateMachine",
            "AWS::Serverless::LayerVersion": "LayerVersion",
        }
        for resource in resources.values():
            section = globals_.get(kinds.get(resource.get("Type", ""), ""), None)
            if not section:
                continue
            props = resource.setdefault("Properties", {}) or {}
            resource["Properties"] = props
            for key, value in section.items():
                props[key] = self._merge_global(copy.deepcopy(value), props[key]) if key in props else copy.deepcopy(value)
        return resources

    # ---------------------------------------------------------------- conditions
    def condition(self, name: str) -> bool:
        if name in self._conditions:
            return self._conditions[name]
        if name not in self._condition_defs:
            raise TemplateError(f"unknown condition {name}")
        self._conditions[name] = None  # type: ignore[assignment]  # cycle guard
        value = self.resolve(self._condition_defs[name], {})
        if not isinstance(value, bool):
            raise TemplateError(f"condition {name} did not evaluate to a boolean: {value!r}")
        self._conditions[name] = value
        return value

    def resource_enabled(self, logical_id: str) -> bool:
        cond = self.resources[logical_id].get("Condition")
        return True if cond is None else self.condition(cond)

    # ---------------------------------------------------------------- intrinsics
    def pseudo(self, name: str) -> Any:
        return {
            "AWS::Region": self.region,
            "AWS::AccountId": self.account_id,
            "AWS::StackName": self.stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{self.region}:{self.account_id}:stack/{self.stack_name}/local",
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": _NO_VALUE,
        }[name]

    def _ref(self, name: str, physical: Physical) -> Any:
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in physical:
            return physical[name].ref
        if name in self.resources:
            raise TemplateError(f"Ref {name}: resource has no physical value (not created locally)")
        raise TemplateError(f"Ref {name}: no such parameter or resource")

    def _getatt(self, logical_id: str, attr: str, physical: Physical) -> Any:
        if logical_id not in physical:
            raise TemplateError(f"GetAtt {logical_id}.{attr}: resource has no physical value")
        attrs = physical[logical_id].attributes
        if attr not in attrs:
            raise TemplateError(f"GetAtt {logical_id}.{attr}: unknown attribute (have {sorted(attrs)})")
        return attrs[attr]

    def _sub(self, arg: Any, physical: Physical) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v, physical) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match) -> str:
            expr = match.group(1)
            if expr.startswith("!"):
                return "${" + expr[1:] + "}"
            expr = expr.strip()
            if expr in variables:
                return _scalar_str(variables[expr])
            if "." in expr and not expr.startswith("AWS::"):
                logical_id, attr = expr.split(".", 1)
                return _scalar_str(self._getatt(logical_id, attr, physical))
            return _scalar_str(self._ref(expr, physical))

        return re.sub(r"\$\{([^}]*)\}", replace, text)

    def resolve(self, value: Any, physical: Physical | None = None) -> Any:
        """Evaluate every intrinsic in ``value``; ``AWS::NoValue`` removes keys/items."""
        physical = physical or {}
        result = self._resolve(value, physical)
        return None if result is _NO_VALUE else result

    def _resolve(self, value: Any, physical: Physical) -> Any:
        if isinstance(value, list):
            items = [self._resolve(v, physical) for v in value]
            return [v for v in items if v is not _NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (key, arg), = value.items()
            if key == "Ref":
                return self._ref(arg, physical)
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key.startswith("Fn::"):
                return self._fn(key, arg, physical)
        out = {}
        for k, v in value.items():
            resolved = self._resolve(v, physical)
            if resolved is not _NO_VALUE:
                out[k] = resolved
        return out

    def _fn(self, key: str, arg: Any, physical: Physical) -> Any:
        r = lambda v: self._resolve(v, physical)  # noqa: E731
        if key == "Fn::GetAtt":
            if isinstance(arg, str):
                arg = arg.split(".", 1)
            logical_id, attr = r(arg[0]), r(arg[1])
            return self._getatt(logical_id, attr, physical)
        if key == "Fn::Sub":
            return self._sub(arg, physical)
        if key == "Fn::If":
            cond, when_true, when_false = arg
            return r(when_true) if self.condition(cond) else r(when_false)
        if key == "Fn::FindInMap":
            name, top, second = (r(a) for a in arg[:3])
            try:
                return copy.deepcopy(self.mappings[name][_scalar_str(top)][_scalar_str(second)])
            except KeyError:
                default = arg[3].get("DefaultValue") if len(arg) > 3 and isinstance(arg[3], dict) else None
                if default is not None:
                    return r(default)
                raise TemplateError(f"FindInMap {name}/{top}/{second}: no such entry") from None
        if key == "Fn::Equals":
            a, b = r(arg[0]), r(arg[1])
            return _scalar_str(a) == _scalar_str(b)
        if key == "Fn::Not":
            return not self._as_bool(r(arg[0] if isinstance(arg, list) else arg))
        if key == "Fn::And":
            return all(self._as_bool(r(a)) for a in arg)
        if key == "Fn::Or":
            return any(self._as_bool(r(a)) for a in arg)
        if key == "Fn::Select":
            index, items = r(arg[0]), r(arg[1])
            return items[int(index)]
        if key == "Fn::Join":
            sep, items = r(arg[0]), r(arg[1])
            return sep.join(_scalar_str(i) for i in items)
        if key == "Fn::Split":
            sep, text = r(arg[0]), r(arg[1])
            return text.split(sep)
        if key == "Fn::Base64":
            import base64

            return base64.b64encode(_scalar_str(r(arg)).encode()).decode()
        if key == "Fn::GetAZs":
            return [f"{self.region}{z}" for z in "abc"]
        if key == "Fn::ToJsonString":
            return json.dumps(r(arg), separators=(",", ":"))
        if key == "Fn::Length":
            return len(r(arg))
        raise TemplateError(f"{key} is not supported by the local template reader")

    @staticmethod
    def _as_bool(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise TemplateError(f"not a condition value: {value!r}")

    # ---------------------------------------------------------------- dependencies
    def dependencies(self, logical_id: str) -> set[str]:
        """Other resources this resource's properties refer to (Ref/GetAtt/Sub/DependsOn)."""
        resource = self.resources[logical_id]
        found: set[str] = set()

        def walk(v: Any) -> None:
            if isinstance(v, dict):
                for k, sub in v.items():
                    if k == "Ref" and isinstance(sub, str):
                        found.add(sub)
                    elif k == "Fn::GetAtt":
                        target = sub.split(".", 1)[0] if isinstance(sub, str) else sub[0]
                        if isinstance(target, str):
                            found.add(target)
                    elif k == "Fn::Sub":
                        text = sub[0] if isinstance(sub, list) else sub
                        for expr in re.findall(r"\$\{([^}!][^}]*)\}", text):
                            found.add(expr.split(".", 1)[0].strip())
                        if isinstance(sub, list):
                            walk(sub[1])
                    else:
                        walk(sub)
            elif isinstance(v, list):
                for sub in v:
                    walk(sub)

        walk(resource.get("Properties") or {})
        depends = resource.get("DependsOn") or []
        found.update([depends] if isinstance(depends, str) else depends)
        return {d for d in found if d in self.resources and d != logical_id}

    def creation_order(self, types: set[str] | None = None) -> list[str]:
        """Enabled resources (optionally of the given types) in dependency order."""
        wanted = [
            lid
            for lid, res in self.resources.items()
            if self.resource_enabled(lid) and (types is None or res.get("Type") in types)
        ]
        order: list[str] = []
        visiting: set[str] = set()

        def visit(lid: str) -> None:
            if lid in order:
                return
            if lid in visiting:
                raise TemplateError(f"circular dependency through {lid}")
            visiting.add(lid)
            for dep in sorted(self.dependencies(lid)):
                if dep in wanted:
                    visit(dep)
            visiting.discard(lid)
            order.append(lid)

        for lid in wanted:
            visit(lid)
        return order

    def properties(self, logical_id: str, physical: Physical | None = None) -> dict:
        return self.resolve(self.resources[logical_id].get("Properties") or {}, physical or {})

    def resources_of_type(self, *types: str) -> list[str]:
        return [lid for lid, r in self.resources.items() if r.get("Type") in types and self.resource_enabled(lid)]

    # ---------------------------------------------------------------- the function
    def function_ids(self) -> list[str]:
        return self.resources_of_type("AWS::Serverless::Function")

    def function(self, logical_id: str = "DrainFunction", physical: Physical | None = None) -> FunctionSettings:
        """The function's settings; its environment needs ``physical`` for Refs to resources."""
        if logical_id not in self.resources:
            raise TemplateError(f"no resource {logical_id} in {self.path}")
        res = self.resources[logical_id]
        physical = physical or {}
        raw_props = res.get("Properties") or {}
        scalar = lambda key, default=None: self.resolve(raw_props.get(key, default), physical)  # noqa: E731

        handler = scalar("Handler")
        code_uri = scalar("CodeUri")
        if not handler or not code_uri or not isinstance(code_uri, str):
            raise TemplateError(f"{logical_id}: Handler and a local CodeUri are required")
        timeout = int(scalar("Timeout", 3))
        memory = int(scalar("MemorySize", 128))

        env_vars = self.resolve(((raw_props.get("Environment") or {}).get("Variables")) or {}, physical)
        environment = {k: _scalar_str(v) for k, v in (env_vars or {}).items()}

        layer_dirs = []
        for layer in raw_props.get("Layers") or []:
            target = layer.get("Ref") if isinstance(layer, dict) else None
            if target in self.resources:
                layer_dirs.append(self.layer_dir(target))
            # Layers given as ARNs (e.g. the public Powertools layer) are satisfied by the venv.

        sqs_event = None
        for name, event in (raw_props.get("Events") or {}).items():
            if (event or {}).get("Type") != "SQS":
                continue
            eprops = event.get("Properties") or {}
            queue_expr = eprops.get("Queue")
            queue_id = _referenced_resource(queue_expr)
            if queue_id is None:
                raise TemplateError(f"{logical_id}.Events.{name}.Queue must be !GetAtt X.Arn or !Ref X")
            ev = lambda key, default=None: self.resolve(eprops.get(key, default), physical)  # noqa: E731
            scaling = self.resolve(eprops.get("ScalingConfig") or {}, physical) or {}
            max_conc = scaling.get("MaximumConcurrency")
            sqs_event = SqsEventSource(
                name=name,
                queue_logical_id=queue_id,
                batch_size=int(ev("BatchSize", 10)),
                maximum_batching_window_seconds=int(ev("MaximumBatchingWindowInSeconds", 0)),
                function_response_types=tuple(ev("FunctionResponseTypes", []) or []),
                maximum_concurrency=int(max_conc) if max_conc not in (None, "") else None,
                enabled=_truthy(ev("Enabled", True)),
            )
            break

        return FunctionSettings(
            logical_id=logical_id,
            handler=handler,
            code_uri=(self.base_dir / code_uri).resolve(),
            timeout=timeout,
            memory_size=memory,
            runtime=scalar("Runtime"),
            layer_dirs=tuple(layer_dirs),
            environment=environment,
            sqs_event=sqs_event,
        )

    def layer_dir(self, logical_id: str) -> Path:
        res = self.resources[logical_id]
        props = res.get("Properties") or {}
        content = self.resolve(props.get("ContentUri") or props.get("Content"), {})
        if not isinstance(content, str):
            raise TemplateError(f"{logical_id}: only a local ContentUri is supported")
        return (self.base_dir / content).resolve()

    def queue(self, logical_id: str) -> QueueSettings:
        props = self.properties_without_physical(logical_id)
        redrive = props.get("RedrivePolicy") or {}
        if isinstance(redrive, str):
            redrive = json.loads(redrive)
        dlq_expr = (self.resources[logical_id].get("Properties") or {}).get("RedrivePolicy", {})
        dlq_expr = dlq_expr.get("deadLetterTargetArn") if isinstance(dlq_expr, dict) else None
        return QueueSettings(
            logical_id=logical_id,
            visibility_timeout=int(props.get("VisibilityTimeout", 30)),
            max_receive_count=int(redrive["maxReceiveCount"]) if "maxReceiveCount" in redrive else None,
            dead_letter_logical_id=_referenced_resource(dlq_expr),
        )

    def properties_without_physical(self, logical_id: str) -> dict:
        """Resolve properties, leaving refs to resources as the logical id (for settings only)."""
        fake = _LogicalEcho(self)
        return self.resolve(self.resources[logical_id].get("Properties") or {}, fake)


class _LogicalEcho(dict):
    """A physical mapping whose every resource resolves to its logical id (settings look-ups)."""

    def __init__(self, template: Template) -> None:
        super().__init__({lid: PhysicalResource(ref=lid, attributes=_EchoAttrs(lid)) for lid in template.resources})


class _EchoAttrs(dict):
    def __init__(self, lid: str) -> None:
        super().__init__()
        self.lid = lid

    def __contains__(self, key: object) -> bool:
        return True

    def __getitem__(self, key: str) -> str:
        return f"{self.lid}.{key}"


def _referenced_resource(expr: Any) -> str | None:
    if isinstance(expr, dict) and len(expr) == 1:
        (key, arg), = expr.items()
        if key == "Ref" and isinstance(arg, str):
            return arg
        if key == "Fn::GetAtt":
            return arg.split(".", 1)[0] if isinstance(arg, str) else arg[0]
    return None


def _truthy(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _scalar_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def parse_overrides(items: list[str] | None) -> dict[str, str]:
    """``["Name=Value", ...]`` (or one ``"A=1 B=2"`` string, as sam deploy accepts) -> dict."""
    out: dict[str, str] = {}
    for item in items or []:
        for part in item.split():
            if "=" not in part:
                raise TemplateError(f"parameter override {part!r} is not NAME=VALUE")
            name, value = part.split("=", 1)
            if name.startswith("ParameterKey="):
                raise TemplateError("use NAME=VALUE")
            out[name] = value
    return out

"""Keep, in a build's botocore, only the service models its code can create a client for.

    python3.13 checks/prune_botocore.py BUILD_DIR      # `make build` runs it after `sam build`

botocore ships a model for every AWS service (~420 directories: 26 MB of the layer's 55), and a
process's first client lists all of those directories, twice (``Loader.list_available_services``,
for the model and for the endpoint rules): ~11 ms of every cold start, for models no function
loads (docs/performance.md, "d, fourth round"). A service is kept when a Python file of the build
names it in a call that creates a client: ``boto3.client("sqs")``, ``boto3.client(\\n"dynamodb"``,
``session.create_client("xray", ...)`` (the X-Ray SDK's sampler), botocore's own
``_client_creator("sts", ...)`` or ``create_nested_client(session, "sso-oidc", ...)``, whether
in the drain's code or in any library of the layer; botocore's root files (endpoints, partitions,
retry rules, default configuration) stay. tests/tools/test_docs.py builds the layer and creates,
from it, every client the functions' code names. Standard library only.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

# A call whose name says it makes a client (client, create_client, _client_creator, resource...)
# with a string among its first arguments; only names botocore has a model for count.
CLIENT_CALL = re.compile(r"""\w*(?:client|resource|creator)\w*\([^()]*?['"]([a-z0-9][a-z0-9-]*)['"]""", re.I)


def named_services(build: Path) -> set[str]:
    names: set[str] = set()
    for source in build.rglob("*.py"):
        names.update(CLIENT_CALL.findall(source.read_text(encoding="utf-8", errors="replace")))
    return names


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not Path(argv[0]).is_dir():
        print("usage: checks/prune_botocore.py BUILD_DIR (a `sam build` output)", file=sys.stderr)
        return 2
    build = Path(argv[0])
    datas = [d for d in build.rglob("botocore/data") if (d / "endpoints.json").is_file()]
    if not datas:
        print(f"prune_botocore: no botocore/data in {build}", file=sys.stderr)
        return 1
    named = named_services(build)
    for data in datas:
        models = {p.name: p for p in data.iterdir() if p.is_dir()}
        kept = sorted(named & models.keys())
        if not kept:  # no client found at all: a scan gone wrong, not a layer without AWS
            print(f"prune_botocore: no client call found in {build}", file=sys.stderr)
            return 1
        for name, path in models.items():
            if name not in named:
                shutil.rmtree(path)
        print(f"make: botocore models kept in {data}: {len(kept)} of {len(models)} ({', '.join(kept)})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

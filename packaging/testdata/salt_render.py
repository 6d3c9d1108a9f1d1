#!/usr/bin/python3
"""Render the relay Salt formula without Salt, for the provisioning suite
when salt-call cannot be installed (PyPI unreachable; Salt is not in
Debian bookworm): Debian's python3-jinja2 with what the formula uses of
Salt's Jinja context, salt['pillar.get'] (with merge), pillar and
grains, and Salt's defaults (no trim_blocks, no lstrip_blocks, the do
extension, tojson as json.dumps).

usage: salt_render.py FILE_ROOT PILLAR.yaml INIT TEMPLATE...
prints a JSON object: "text": template name -> rendered text, and
"yaml": for each .sls, the rendered text parsed as YAML (as Salt's
default renderer, jinja|yaml, does).
"""
import copy
import json
import sys

import jinja2
import yaml


def main():
    file_root, pillar_file, init = sys.argv[1:4]
    with open(pillar_file) as f:
        pillar = yaml.safe_load(f) or {}

    def merged(default, value):
        if isinstance(default, dict) and isinstance(value, dict):
            out = copy.deepcopy(default)
            for k, v in value.items():
                out[k] = merged(out.get(k), v)
            return out
        return copy.deepcopy(value)

    def pillar_get(key, default="", merge=False, delimiter=":"):
        cur = pillar
        for part in key.split(delimiter):
            if isinstance(cur, dict) and part in cur:
                cur = cur[part]
            elif isinstance(cur, list) and part.isdigit() and int(part) < len(cur):
                cur = cur[int(part)]
            else:
                return default
        return merged(default, cur) if merge else cur

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(file_root),
                             extensions=["jinja2.ext.do"], undefined=jinja2.StrictUndefined)
    env.filters["tojson"] = json.dumps
    ctx = {"salt": {"pillar.get": pillar_get}, "pillar": pillar, "grains": {"init": init}}
    text = {name: env.get_template(name).render(ctx) for name in sys.argv[4:]}
    states = {name: yaml.safe_load(t) or {} for name, t in text.items() if name.endswith(".sls")}
    json.dump({"text": text, "yaml": states}, sys.stdout)


main()

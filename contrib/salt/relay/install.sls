{%- from "relay/map.jinja" import relay, systemd, hup, trigger with context %}
{%- if relay.package.source == 'path' %}

relay-package:
  pkg.installed:
    - sources:
      - relay: {{ relay.package.path | tojson }}
{%- else %}
{%-   if relay.package.repository %}

relay-repository:
  pkgrepo.managed:
    - name: {{ relay.package.repository | tojson }}
    - file: /etc/apt/sources.list.d/relay.list
{%-     if relay.package.key_url %}
    - key_url: {{ relay.package.key_url | tojson }}
{%-     endif %}
    - require_in:
      - pkg: relay-package
{%-   endif %}

relay-package:
  pkg.installed:
    - name: relay
{%-   if relay.package.version %}
    - version: {{ relay.package.version | tojson }}
{%-   endif %}
{%- endif %}

{%- from "relay/map.jinja" import relay, systemd, hup, trigger with context %}
include:
  - relay.install
  - relay.service

{#- Secrets first: the configuration that names them is checked with them
    in place. contents_pillar keeps the password out of the rendered
    states, show_changes out of the output. #}
{%- for sh in relay.smarthosts %}
{%-   if sh.password is defined %}

relay-secret-{{ sh.name }}:
  file.managed:
    - name: {{ (relay.config_dir ~ '/' ~ sh.name ~ '.secret') | tojson }}
    - contents_pillar: relay:smarthosts:{{ loop.index0 }}:password
    - user: root
    - group: relay
    - mode: "0640"
    - show_changes: false
    - require:
      - pkg: relay-package
    - require_in:
      - file: relay-config
    - {{ trigger }}:
      - relay-service
{%-   endif %}
{%- endfor %}
{%- for name in ['aliases', 'sender_map'] if relay[name] %}

relay-{{ name }}:
  file.managed:
    - name: {{ (relay.config_dir ~ '/' ~ name) | tojson }}
    - source: salt://relay/files/{{ name }}.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - pkg: relay-package
    - require_in:
      - file: relay-config
    - {{ trigger }}:
      - relay-service
{%- endfor %}

# check_cmd: a file relay would refuse never replaces the working one; the
# state fails with relay's file:line: key: message lines.
relay-config:
  file.managed:
    - name: {{ relay.config_file | tojson }}
    - source: salt://relay/files/relay.toml.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - check_cmd: relay check --config-only -C
    - require:
      - pkg: relay-package
    - {{ trigger }}:
      - relay-service

# The keys a running daemon takes only on a restart (spool, [daemon] user
# and listen*, [metrics] listen, [log] to), written apart: a change among
# them restarts the daemon instead of reloading it.
relay-restart-keys:
  file.managed:
    - name: {{ (relay.config_dir ~ '/.restart-keys') | tojson }}
    - source: salt://relay/files/restart-keys.jinja
    - template: jinja
    - user: root
    - group: root
    - mode: "0644"
    - require:
      - file: relay-config
    - {{ trigger }}:
      - relay-restart

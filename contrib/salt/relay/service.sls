{%- from "relay/map.jinja" import relay, systemd, hup, trigger with context %}
include:
  - relay.install
{%- if systemd %}

relay-queue-timer:
  service.{{ 'running' if relay.mode == 'timer' else 'dead' }}:
    - name: relay-queue.timer
    - enable: {{ (relay.mode == 'timer') | tojson }}
    - require:
      - pkg: relay-package
{%- endif %}
{%- if not hup %}

# relay.service runs; a change to relay.toml or a secret reloads it
# (SIGHUP: relay reads the file again), a change to a restart key
# restarts it.
relay-service:
  service.running:
    - name: relay
    - enable: true
    - reload: true
    - require:
      - pkg: relay-package

relay-restart:
  service.running:
    - name: relay
    - require:
      - service: relay-service
{%- else %}
{%-   if systemd %}

relay-service-stopped:
  service.dead:
    - name: relay
    - enable: false
    - require:
      - pkg: relay-package
{%-   endif %}
{%-   for id in ['relay-service', 'relay-restart'] %}

# No daemon under systemd: one started by hand, if any, has its pid in
# the spool; SIGHUP applies what a running daemon can take.
{{ id }}:
  cmd.run:
    - name: {{ ('pid=$(cat ' ~ relay.spool ~ '/daemon.pid 2>/dev/null) && kill -HUP "$pid" 2>/dev/null || true') | tojson }}
    - require:
      - pkg: relay-package
{%-   endfor %}
{%- endif %}

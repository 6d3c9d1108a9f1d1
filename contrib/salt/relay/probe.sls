{%- from "relay/map.jinja" import relay, systemd, hup, trigger with context %}
{%- if relay.probe %}
include:
  - relay.config
  - relay.service

# relay probe connects to every smarthost and logs in (and sends a test
# message with probe_send_to); it changes nothing, and says so.
relay-probe:
  cmd.run:
    - name: {{ ('relay probe' ~ (' --send-to ' ~ relay.probe_send_to if relay.probe_send_to else '') ~ " && echo && echo changed=no") | tojson }}
    - stateful: true
    - require:
      - relay-config
      - relay-service
      - relay-restart
{%- endif %}

# relay: install the package, write the secrets and relay.toml (checked by
# relay check --config-only before it replaces the working file), run the
# delivery mode, reload or restart on change. See README.md.
include:
  - relay.install
  - relay.config
  - relay.service
  - relay.probe

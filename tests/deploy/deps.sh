#!/bin/sh
# tests/deploy/deps.sh: install what the deploy checks (ctest -R '^deploy\.') need, from Debian:
# python3-botocore (the ECS API model), python3-yaml (CloudFormation templates, the generated
# compose file of deploy.docker_e2e), docker-compose (`docker-compose config`, and `up` in
# deploy.docker_e2e) and docker.io (the engine deploy.docker_e2e starts privately: dockerd,
# containerd, runc; it pulls nothing), skopeo (the lint tests' `skopeo copy docker-archive:X
# oci:DIR`, offline), busybox-static (a real shell for the image lint.docker_save builds FROM
# scratch) and qemu-user-static (deploy.arm64_*: the Graviton build run under
# qemu-aarch64-static; build-static.sh --arch arm64 installs the cross compiler itself).
# Idempotent: does nothing when all are installed. Needs root.
# deploy.static_build (deploy/build-static.sh) installs its own build tools (musl-tools, ...).
# The tests themselves install nothing: they fail, saying to run this, when something is missing.
# On a machine with systemd, installing docker.io also enables the system's docker service; the
# tests never use it (they start their own daemon on a socket in the build directory).
set -eu
exec sh "$(dirname "$0")/../../deploy/deps.sh" --only \
  "python3 python3-botocore python3-yaml docker-compose docker.io skopeo busybox-static qemu-user-static"

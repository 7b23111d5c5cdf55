"""Checks that docker/Dockerfile and docker/compose.yaml parse and agree (no Docker needed):
every Dockerfile line is a known instruction, `COPY --from` and compose build targets name
existing stages, FoundationDB is the 7.3 image with its one-time `configure new single ssd`,
and the app on it is built with the fdb feature, pointed at the cluster file and published
on a range of host ports (so that `--scale app=N` starts N instances, not one)."""

import pathlib
import re
import sys

import yaml

HERE = pathlib.Path(__file__).parent
INSTRUCTIONS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}


def dockerfile_stages(text):
    """The stage names, after checking every instruction and every `COPY --from`."""
    stages = []
    logical = re.sub(r"\\\n", " ", text)
    for number, line in enumerate(logical.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word = line.split()[0].upper()
        assert word in INSTRUCTIONS, f"Dockerfile line {number}: unknown instruction {word!r}"
        if word == "FROM":
            match = re.fullmatch(r"FROM\s+\S+(\s+AS\s+(\S+))?", line, re.IGNORECASE)
            assert match, f"Dockerfile line {number}: malformed FROM"
            stages.append(match.group(2))
        copied = re.search(r"--from=(\S+)", line)
        if word == "COPY" and copied:
            assert copied.group(1) in stages, f"Dockerfile line {number}: no earlier stage {copied.group(1)!r}"
    return stages


def main():
    stages = dockerfile_stages((HERE / "Dockerfile").read_text())
    for stage in ("build", "embedded", "fdb"):
        assert stage in stages, f"Dockerfile has no stage {stage!r}"
    compose = yaml.safe_load((HERE / "compose.yaml").read_text())
    services = compose["services"]
    fdb_images = [s["image"] for s in services.values() if "foundationdb/foundationdb" in s.get("image", "")]
    assert fdb_images and all(":-7.3." in image for image in fdb_images), fdb_images
    configure = " ".join(services["fdb-configure"]["command"])
    assert "configure new single ssd" in configure, configure
    for name, service in services.items():
        build = service.get("build")
        if build:
            assert build["target"] in stages, f"{name}: no stage {build['target']!r}"
            assert (HERE / build["context"] / build["dockerfile"]).resolve() == (HERE / "Dockerfile").resolve()
    app = services["app"]
    assert app["build"]["args"]["FEATURES"] == "fdb"
    assert app["environment"]["FAIRWAY_FDB_CLUSTER_FILE"] == "/var/fdb/fdb.cluster"
    for port in app.get("ports", []):
        host = str(port).rsplit(":", 1)[0] if ":" in str(port) else ""
        assert not re.fullmatch(r"\d+", host), f"app: host port {host} fits one instance only: {port!r}"
    for volume in (v.split(":")[0] for s in services.values() for v in s.get("volumes", [])):
        assert volume in compose["volumes"], f"undeclared volume {volume!r}"
    print(f"docker: Dockerfile stages {stages}, compose services {sorted(services)}: ok")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as err:
        sys.exit(f"docker: {err}")

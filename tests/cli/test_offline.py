"""Programs without network: weights and data that cannot be fetched, in one line.

Each program runs in a fresh process, so huggingface_hub reads `HF_HUB_OFFLINE`,
`HF_HUB_CACHE` and `HF_ENDPOINT` from the environment as it does for a user.
No run reaches the network: `HF_HUB_OFFLINE=1`, or `HF_ENDPOINT` on a stand-in
Hub on the loopback interface.
"""

import http.server
import json
import os
import re
import subprocess
import threading

import pytest

from csra_tf.data.benchmark_classes import VOC_CLASSES
from tests.cli.test_errors import ENV, _command, program_lines
from tests.data.test_tfds_builders import prepare_offline, write_voc_archive
from tests.programs import REPO

PAPER_FLAGS = os.path.join(REPO, "experiments", "configs", "voc2007_r101_csra.flags")


# The progress bars of data generation (tqdm: `<what>:  50%|#####   | 4/8 ...`).
_PROGRESS = re.compile(r"^.*: +\d+%\|")


def _train(env, *args):
    return subprocess.run(
        [*_command("csra-train", "csra_tf.cli.csra_train"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def _assert_one_line(result, *fragments):
    lines = [line for line in program_lines(result.stderr) if not _PROGRESS.match(line)]
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("csra-train: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_train_with_hf_weights_offline_and_an_empty_cache(tmp_path):
    cache = tmp_path / "hf_cache"
    cache.mkdir()
    env = {**ENV, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    result = _train(
        env,
        f"--workdir={tmp_path / 'run'}",
        "--backbone=resnet18",
        "--weights=hf://timm/resnet18.a1_in1k",
        "--num_train=8",
        "--num_val=4",
        "--shapes_image_size=32",
        "--image_size=32",
        "--epochs=1",
    )
    _assert_one_line(
        result,
        "hf://timm/resnet18.a1_in1k",
        "HF_HUB_OFFLINE",
        str(cache),
        "hf download timm/resnet18.a1_in1k",
    )


class _MissingRepoHub(http.server.BaseHTTPRequestHandler):
    """A stand-in Hub that has no repository (what huggingface.co answers)."""

    def _not_found(self):
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("X-Error-Message", "Repository not found")
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_HEAD = do_GET = _not_found

    def log_message(self, *args):
        pass


@pytest.fixture
def missing_repo_hub():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _MissingRepoHub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_paper_flagfile_reads_prepared_voc_then_names_a_wrong_handle(
    tmp_path, monkeypatch, missing_repo_hub
):
    """The paper's VOC2007 config on a prepared TFDS folder gets past the data."""
    data_dir = tmp_path / "tensorflow_datasets"
    root = write_voc_archive(str(tmp_path / "voc_raw"), 2007)
    prepare_offline("voc/2007", data_dir, root, monkeypatch)
    cache = tmp_path / "hf_cache"
    cache.mkdir()
    env = {**ENV, "HF_ENDPOINT": missing_repo_hub, "HF_HUB_CACHE": str(cache)}
    env.pop("HF_HUB_OFFLINE", None)
    workdir = tmp_path / "run"
    result = _train(
        env,
        f"--flagfile={PAPER_FLAGS}",
        f"--data_dir={data_dir}",
        f"--workdir={workdir}",
        "--weights=hf://timm/no-such-resnet",
    )
    _assert_one_line(
        result, "hf://timm/no-such-resnet", "has no model timm/no-such-resnet"
    )
    # The data came first: the run folder names VOC's classes.
    with open(workdir / "classes.json") as f:
        assert json.load(f) == list(VOC_CLASSES)

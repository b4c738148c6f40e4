"""User mistakes on the command line: exit 2, ONE line on stderr, no traceback, no file
left behind, answered in seconds, before any work starts.

Each case runs outside the test process, in a fresh temporary folder, under a time
limit. The refusals of arguments (usage errors, Unicode digits, huge sizes, plot paths)
run one after another in one Python process through the `bea` script's `main`, each
under its own alarm; full disks, read-only folders and Ctrl-C run the real script, one
process each, so they are seen exactly as a shell user sees them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bea.cli import main

BEA = [sys.executable, "-m", "bea.cli"]
SECONDS = 20  # generous on a loaded machine; the refusals themselves take well under 1 s


def bea(*argv, cwd, stdout=subprocess.PIPE, timeout=SECONDS):
    start = time.monotonic()
    proc = subprocess.run(
        [*BEA, *argv], cwd=cwd, stdout=stdout, stderr=subprocess.PIPE, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    return proc, time.monotonic() - start


# Runs each argv (a JSON list on stdin) through `main` in a fresh folder, under an
# alarm of SECONDS, and prints one JSON record per argv. An exception escaping `main`
# is recorded with its type: the shell user would have seen a traceback.
BATCH = """
import contextlib, io, json, os, shutil, signal, sys, tempfile, time
from bea.cli import main

def too_long(*_):
    raise TimeoutError("no answer within the time limit")

signal.signal(signal.SIGALRM, too_long)
records = []
for argv in json.load(sys.stdin):
    folder = tempfile.mkdtemp()
    os.chdir(folder)
    out, err = io.StringIO(), io.StringIO()
    start = time.monotonic()
    signal.alarm(int(sys.argv[1]))
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
            except SystemExit as e:
                code = e.code
    except BaseException as e:
        code = "raised " + type(e).__name__ + ": " + str(e)
    finally:
        signal.alarm(0)
    records.append({
        "code": code, "stdout": out.getvalue(), "stderr": err.getvalue(),
        "seconds": time.monotonic() - start, "left": os.listdir("."),
    })
    os.chdir("/")
    shutil.rmtree(folder, ignore_errors=True)
print(json.dumps(records))
"""


class Refusal:
    """What one argv of the batch gave: exit status, streams, time and files left."""

    def __init__(self, record):
        self.returncode, self.stdout = record["code"], record["stdout"]
        self.stderr, self.seconds, self.left = record["stderr"], record["seconds"], record["left"]


def run_batch(argvs) -> list[Refusal]:
    proc = subprocess.run(
        [sys.executable, "-c", BATCH, str(SECONDS)], input=json.dumps(argvs),
        capture_output=True, text=True, timeout=SECONDS * len(argvs), check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return [Refusal(r) for r in json.loads(proc.stdout)]


def assert_refused_alone(result, *words):
    """Exit 2, one line naming `words`, no traceback, nothing left, within the limit."""
    err = result.stderr
    assert result.returncode == 2, (result.returncode, err)
    assert err.startswith("bea: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert result.left == [], result.left  # nothing left behind
    assert result.seconds < SECONDS


pytestmark = pytest.mark.xdist_group("cli_errors")  # one batch process per run


@pytest.fixture
def cwd(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


ARGPARSE = [
    (["derive", "gd"], ["required: --order", "bea derive --help"]),
    (["derive", "gd", "--order", "1", "--bogus"], ["--bogus"]),
    (["verify", "gd", "--order", "1", "--format", "xml"], ["invalid choice: 'xml'"]),
    (["nope"], ["invalid choice: 'nope'"]),
    ([], ["required"]),
]


@pytest.mark.parametrize("argv, words", ARGPARSE)
def test_argparse_errors_are_one_sentence(refusals, argv, words):
    result = refusals[json.dumps(argv)]
    assert_refused_alone(result, *words)
    assert "usage:" not in result.stderr


def test_errors_name_the_flag_not_the_python_keyword(refusals):
    result = refusals[json.dumps(["loss", "gd", "--order", "2"])]
    assert_refused_alone(result, "pass --held-fixed")
    assert "held_fixed=True" not in result.stderr
    result = refusals[json.dumps(["derive", "sgd", "--order", "9", "--param", "n=4"])]
    assert_refused_alone(result, "--force")
    assert "force=True" not in result.stderr


HUGE = "9" * 300
SIZES = [
    (["derive", "gd", "--order", "2000"], ["--order 2000", "limit of 20", "--force"]),
    (["derive", "gd", "--order", "1000000000"], ["limit of 20", "--force"]),
    (["derive", "gd", "--order", HUGE], ["300 digits", "--force"]),
    (["derive", "gd", "--order", HUGE, "--force"], ["beyond what any machine"]),
    # Unicode digits: Khmer, Oriya, NKo, Bamum, Kayah Li, Myanmar (int() reads 404192)
    (["derive", "gd", "--order", "+៤୦߄𖩡꣙႒"], ["ASCII digits"]),
    (["derive", "sam", "--order", "1", "--param", "rho=៤"], ["ASCII digits"]),
    (["derive", "sam", "--order", "1", "--param", "rho=1e999999999"], ["digits", "--force"]),
    (["derive", "sam", "--order", "1", "--param", "rho=1e-3000"], ["3001 digits", "--force"]),
    (["derive", "sam", "--order", "1", "--param", "rho=" + "7" * 5000], ["5000 digits"]),
    (["derive", "sgd", "--order", "1", "--param", "n=10000000000"], ["--param n=", "--force"]),
    (["derive", "alternating", "--order", "1", "--param", "m=10000000000"], ["--force"]),
    (["loss", "sgd", "--order", "8", "--expected", "--param", "n=7"], ["trees", "--force"]),
    (["verify", "gd", "--order", "1", "--steps", "10000000000"], ["--steps", "--force"]),
    (["derive", "rk4", "--order", "1", "--param", "A=1"], ["tableau"]),
    (["derive", "euler", "--order", "1", "--param", "b=1"], ["tableau"]),
    (["verify", "rk4", "--order", "1", "--param", "A=1"], ["tableau"]),
    (["principal", "sam", "--param", "rho=z"], ["'z'", "reserves"]),
    (["derive", "sam", "--order", "1", "--param", "rho=h"], ["'h'"]),
]


@pytest.mark.parametrize("argv, words", SIZES)
def test_sizes_are_bounded_before_any_work(refusals, argv, words):
    result = refusals[json.dumps(argv)]
    assert_refused_alone(result, *words)
    assert len(result.stderr) < 300  # never echoes a 300- or 5000-digit number


PLOTS = [
    ("/proc/bea-no/check.png", ["not writable"]),
    ("check.txt", ["extension"]),
    ("check", ["extension"]),
    ("sub/check.gif", ["extension"]),
    ("x" * 300 + ".png", ["255 bytes"]),
]


def _plot_argv(plot):
    return ["verify", "gd", "--order", "1", "--plot", plot]


@pytest.mark.parametrize("plot, words", PLOTS)
def test_plot_paths_are_checked_before_the_run(refusals, plot, words):
    result = refusals[json.dumps(_plot_argv(plot))]
    assert_refused_alone(result, *words)
    assert "verifying" not in result.stdout  # refused before the run


@pytest.fixture(scope="module")
def refusals():
    """Every argv above, run once in one process: json.dumps(argv) -> Refusal."""
    argvs = [argv for argv, _ in ARGPARSE + SIZES] + [_plot_argv(p) for p, _ in PLOTS]
    argvs += [["loss", "gd", "--order", "2"], ["derive", "sgd", "--order", "9", "--param", "n=4"]]
    return dict(zip(map(json.dumps, argvs), run_batch(argvs), strict=True))


def test_plot_under_a_file_is_refused(cwd):
    (cwd / "afile").write_text("")
    proc, _ = bea("verify", "gd", "--order", "1", "--plot", "afile/check.png", cwd=cwd)
    assert proc.returncode == 2 and "is a file, not a folder" in proc.stderr
    assert proc.stderr.count("\n") == 1 and os.listdir(cwd) == ["afile"]


def test_demo_refuses_out_when_it_is_a_file(cwd):
    (cwd / "out").write_text("not a folder")
    proc, _ = bea("demo", cwd=cwd)
    assert proc.returncode == 2 and "out is a file, not a folder" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""


def test_demo_refuses_a_read_only_folder():
    # /proc refuses new files even to root, unlike a chmod-ed folder
    proc, _ = bea("demo", cwd="/proc")
    assert proc.returncode == 2 and "not writable" in proc.stderr, proc.stderr
    assert proc.stderr.count("\n") == 1 and proc.stdout == ""


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_demo_refuses_a_chmod_read_only_folder(cwd):
    cwd.chmod(0o500)
    try:
        proc, _ = bea("demo", cwd=cwd)
    finally:
        cwd.chmod(0o700)
    assert proc.returncode == 2 and "not writable" in proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_stdout_on_a_full_disk(cwd):
    with open("/dev/full", "w") as full:
        proc, _ = bea("derive", "gd", "--order", "2", cwd=cwd, stdout=full)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == "bea: error: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("delay", [0.0, 0.7])
def test_ctrl_c_exits_130_with_one_line(cwd, delay):
    # Ctrl-C while JAX compiles and runs: a KeyboardInterrupt landing in JAX's
    # garbage-collector callback used to be dropped, and the run exited 0
    proc = subprocess.Popen(
        [*BEA, "verify", "rk4", "--order", "4"], cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    first = proc.stdout.readline()  # printed inside the command, before the run
    assert first.startswith("verifying rk4"), first
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err == "bea: error: interrupted\n", (proc.returncode, err)


@pytest.mark.parametrize("value", ["inf", "nan", "True", "None", "pi", "oo"])
def test_param_values_that_mean_numbers_are_not_taken_as_symbols(value, capsys):
    # taken as a symbol named "inf", it printed like the value it is not
    assert main(["derive", "sam", "--order", "1", "--param", f"rho={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("bea: error: ") and "\n" not in err and "exact finite number" in err


def test_an_empty_plot_path_is_refused(capsys):
    # it wrote nothing, silently
    assert main(["verify", "gd", "--order", "1", "--plot", ""]) == 2
    assert "names no file" in capsys.readouterr().err


def test_an_output_file_is_written_whole_and_alone(tmp_path):
    from bea.cli._interrupt import write_atomically

    target = tmp_path / "out" / "f.py"

    def half_then_fail(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("disk gone")

    with pytest.raises(OSError):
        write_atomically(str(target), half_then_fail)
    assert list(target.parent.iterdir()) == []  # no half file, no temporary left
    write_atomically(str(target), lambda tmp: Path(tmp).write_text("whole"))
    assert target.read_text() == "whole" and [p.name for p in target.parent.iterdir()] == ["f.py"]
    assert target.stat().st_mode & 0o644 == 0o644  # the mode `open` gives, not mkstemp's 0600

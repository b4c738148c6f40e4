"""User mistakes on the command line: exit 2, ONE line on stderr, no traceback, no file
left behind, answered in seconds, before any work starts.

Each case runs the real `bea` script in a subprocess (in a fresh temporary folder) so
that usage errors, Unicode digits, huge sizes, full disks and Ctrl-C are seen exactly
as a shell user sees them.
"""

from __future__ import annotations

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


def assert_one_line_refusal(proc, cwd, *words):
    err = proc.stderr
    assert proc.returncode == 2, (proc.returncode, err)
    assert err.startswith("bea: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    assert os.listdir(cwd) == [], os.listdir(cwd)  # nothing left behind


@pytest.fixture
def cwd(tmp_path):
    d = tmp_path / "work"
    d.mkdir()
    return d


@pytest.mark.parametrize(
    "argv, words",
    [
        (["derive", "gd"], ["required: --order", "bea derive --help"]),
        (["derive", "gd", "--order", "1", "--bogus"], ["--bogus"]),
        (["verify", "gd", "--order", "1", "--format", "xml"], ["invalid choice: 'xml'"]),
        (["nope"], ["invalid choice: 'nope'"]),
        ([], ["required"]),
    ],
)
def test_argparse_errors_are_one_sentence(cwd, argv, words):
    proc, _ = bea(*argv, cwd=cwd)
    assert_one_line_refusal(proc, cwd, *words)
    assert "usage:" not in proc.stderr


def test_errors_name_the_flag_not_the_python_keyword(cwd):
    proc, _ = bea("loss", "gd", "--order", "2", cwd=cwd)
    assert_one_line_refusal(proc, cwd, "pass --held-fixed")
    assert "held_fixed=True" not in proc.stderr
    proc, _ = bea("derive", "sgd", "--order", "9", "--param", "n=4", cwd=cwd)
    assert_one_line_refusal(proc, cwd, "--force")
    assert "force=True" not in proc.stderr


HUGE = "9" * 300


@pytest.mark.parametrize(
    "argv, words",
    [
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
    ],
)
def test_sizes_are_bounded_before_any_work(cwd, argv, words):
    proc, took = bea(*argv, cwd=cwd)
    assert_one_line_refusal(proc, cwd, *words)
    assert len(proc.stderr) < 300  # never echoes a 300- or 5000-digit number
    assert took < SECONDS


@pytest.mark.parametrize(
    "plot, words",
    [
        ("/proc/bea-no/check.png", ["not writable"]),
        ("check.txt", ["extension"]),
        ("check", ["extension"]),
        ("sub/check.gif", ["extension"]),
        ("x" * 300 + ".png", ["255 bytes"]),
    ],
)
def test_plot_paths_are_checked_before_the_run(cwd, plot, words):
    proc, _ = bea("verify", "gd", "--order", "1", "--plot", plot, cwd=cwd)
    assert_one_line_refusal(proc, cwd, *words)
    assert "verifying" not in proc.stdout  # refused before the run


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

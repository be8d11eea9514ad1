"""Unit tests of tools/run-readme.py: that its expectations can fail (`python3 -m unittest tools/test_run_readme.py`)."""

import importlib.util
import subprocess
import unittest
from pathlib import Path

spec = importlib.util.spec_from_file_location("run_readme", Path(__file__).with_name("run-readme.py"))
run_readme = importlib.util.module_from_spec(spec)
spec.loader.exec_module(run_readme)


def run(text: str) -> int:
    script = run_readme.play_script([text], Path("/tmp/state"))
    return subprocess.run(["bash", "-c", script], capture_output=True).returncode


class Blocks(unittest.TestCase):
    def test_finds_marked_blocks_only(self):
        readme = "```sh\nnot run\n```\n```sh play:up\nmake up\n```\n```sh play\necho a\n```\n"
        self.assertEqual(run_readme.blocks(readme), [("play:up", "make up"), ("play", "echo a")])

    def test_comments_outside_quotes_only(self):
        self.assertEqual(run_readme.split_comment("sub 'data/#' --count 1   # a reading"),
                         ("sub 'data/#' --count 1", "# a reading"))
        self.assertEqual(run_readme.split_comment("echo a#b"), ("echo a#b", ""))

    def test_continuations_are_joined(self):
        self.assertEqual(run_readme.logical_lines("a \\\n  b # c\nd"), ["a    b # c", "d"])

    def test_the_state_directory_is_substituted(self):
        self.assertIn("/tmp/state/ca", run_readme.play_script(["cat .iot-emulator/ca"], Path("/tmp/state")))


class Expectations(unittest.TestCase):
    def test_a_failing_command_fails_the_run(self):
        self.assertNotEqual(run("true\nfalse\n"), 0)

    def test_refused_must_fail(self):
        self.assertEqual(run("false   # refused: as expected"), 0)
        self.assertNotEqual(run("true    # refused: but it was not"), 0)

    def test_nothing_must_print_nothing(self):
        self.assertEqual(run("true    # nothing"), 0)
        self.assertNotEqual(run("echo x  # nothing, says the README"), 0)

    def test_variables_carry_over_between_blocks(self):
        script = run_readme.play_script(["A=1", "test \"$A\" = 1"], Path("/tmp/state"))
        self.assertEqual(subprocess.run(["bash", "-c", script], capture_output=True).returncode, 0)


if __name__ == "__main__":
    unittest.main()

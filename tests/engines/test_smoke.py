"""The walking skeleton end to end: exec over real HTTP, output and exit code come back."""


def test_exec_returns_output_and_exit_code(server):
    final = server.run("echo hello; echo oops >&2; exit 3")
    assert final["status"] == "STOPPED"
    assert final["exit_code"] == 3
    lines = server.all_lines(final["execution_id"])
    assert "hello" in lines and "oops" in lines

"""delete: stopped, running (needs --force), created (runc deletes it without --force), missing."""
import os


def test_delete_stopped(runtime):
    c = runtime.container(["true"])
    c.start()
    c.wait_status("stopped")
    c.delete()
    runtime.fail("state", c.id)
    assert c.leftovers() == []


def test_delete_running_without_force_fails(runtime):
    c = runtime.container(["sleep", "1000"])
    c.start()
    runtime.fail("delete", c.id)
    assert c.status == "running", "a refused delete must leave the container alone"
    assert os.path.isdir(os.path.join(runtime.root, c.id))
    c.delete(force=True)
    runtime.fail("state", c.id)
    assert c.leftovers() == []


def test_delete_force_running_leaves_nothing(runtime):
    c = runtime.container(["sh", "-c", "sleep 1000 & sleep 1000 & touch /shared/ready; wait"], shared=True)
    c.start()
    c.wait_file("ready")
    pid = c.pid
    c.delete(force=True)
    assert not _alive(pid)
    assert c.leftovers() == []
    runtime.fail("state", c.id)


def test_delete_force_short_flag(runtime):
    c = runtime.container(["sleep", "1000"])
    c.start()
    runtime.run("delete", "-f", c.id)
    assert c.leftovers() == []


def test_delete_created_without_force(runtime):
    """runc's behaviour (not the spec's): a created container is killed and deleted without --force."""
    c = runtime.container(["touch", "/shared/ran"], shared=True)
    pid = c.pid
    c.delete()
    assert not _alive(pid)
    assert not os.path.exists(c.path("ran"))
    assert c.leftovers() == []


def test_delete_force_created(runtime):
    c = runtime.container(["true"])
    c.delete(force=True)
    assert c.leftovers() == []


def test_delete_nonexistent_fails(runtime):
    cp = runtime.fail("delete", runtime.new_id())
    assert "does not exist" in cp.stderr


def test_delete_force_nonexistent_succeeds(runtime):
    cp = runtime.run("delete", "--force", runtime.new_id())
    assert cp.returncode == 0


def test_delete_twice(runtime):
    c = runtime.container(["true"])
    c.delete(force=True)
    runtime.fail("delete", c.id)
    runtime.run("delete", "--force", c.id)


def test_id_reusable_after_delete(runtime):
    c = runtime.container(["true"])
    c.delete()
    c.create()
    assert c.status == "created"
    c.delete()


def test_delete_removes_state_dir_when_init_vanished(runtime):
    """The init was SIGKILLed behind the runtime's back: delete still cleans up."""
    c = runtime.container(["sleep", "1000"])
    c.start()
    os.kill(c.pid, 9)
    c.wait_status("stopped")
    c.delete()
    assert c.leftovers() == []


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False

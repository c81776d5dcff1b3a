//! Issue 31: the stdio paths a Create names are opened by the shim as root, so another
//! local user who can change what such a path names must not get a root-owned file
//! appended to, read from, or created: a link in the last place is refused, a FIFO
//! that is missing is an error (never a new regular file), a FIFO in a directory others
//! can write, or owned by another user, is refused, and a `file://` log that is a link
//! is refused too. Each test drives the shim under test directly and checks the
//! victim file is untouched.

use skiff_integration::containerd::{default_state_root, shim_binary};
use skiff_integration::ensure;
use skiff_integration::shimtest::ctx::{cmd, sh, Ctx, Outcome, Verdict};
use skiff_integration::shimtest::harness::Harness;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

const SECRET: &str = "root's own words\n";

fn run(name: &str, test: impl FnOnce(&mut Ctx) -> Outcome) {
    Harness::new(&shim_binary(), default_state_root())
        .expect("harness")
        .run(name, test)
}

/// A root-owned file standing for /etc/shadow, outside the FIFO directory.
fn victim(ctx: &Ctx) -> PathBuf {
    let dir = ctx.dir.path().join("etc");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("shadow");
    std::fs::write(&path, SECRET).unwrap();
    path
}

fn mkfifo(path: &Path) {
    skiff_integration::shimtest::stdio::mkfifo(path).unwrap();
}

/// Create with `change` applied to the request must fail, saying `why`.
fn create_is_refused(
    ctx: &mut Ctx,
    id: &str,
    stdin: bool,
    change: impl FnOnce(&mut skiff_protos::shim::CreateTaskRequest),
    why: &str,
) -> Outcome {
    let setup = if stdin {
        cmd(id, &["cat"]).stdin()
    } else {
        sh(id, "echo written-by-the-container")
    };
    let (mut c, mut req) = ctx.prepare(&setup)?;
    change(&mut req);
    match c.api.create(&req) {
        Ok(r) => {
            c.pid = r.pid;
            ctx.track(&[r.pid]);
            let _ = c.start();
            let _ = c.kill_all(9);
            let _ = c.wait();
            Err(Verdict::Fail(format!(
                "Create with stdin {:?} stdout {:?} succeeded",
                req.stdin, req.stdout
            )))
        }
        Err(e) => {
            ensure!(
                e.to_string().contains(why),
                "Create failed, but not saying {why:?}: {e}"
            );
            Ok(())
        }
    }
}

fn unchanged(victim: &Path) -> Outcome {
    let now = std::fs::read_to_string(victim).unwrap_or_default();
    ensure!(now == SECRET, "{} now holds {now:?}", victim.display());
    Ok(())
}

#[test]
fn an_output_path_that_is_a_link_is_refused() {
    run("stdout-link", |ctx| {
        let victim = victim(ctx);
        let link = ctx.dir.path().join("stdout-link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let out = link.display().to_string();
        create_is_refused(ctx, "c", false, |r| r.stdout = out, "a symbolic link")?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        unchanged(&victim)
    });
}

#[test]
fn a_stdin_path_that_is_a_link_is_refused() {
    run("stdin-link", |ctx| {
        let victim = victim(ctx);
        let link = ctx.dir.path().join("stdin-link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let input = link.display().to_string();
        create_is_refused(ctx, "c", true, |r| r.stdin = input, "a symbolic link")
    });
}

#[test]
fn a_missing_output_fifo_is_an_error_not_a_new_file() {
    run("stdout-missing", |ctx| {
        let missing = ctx.dir.path().join("no-such-fifo");
        let out = missing.display().to_string();
        create_is_refused(ctx, "c", false, |r| r.stdout = out, "does not exist")?;
        ensure!(
            !missing.exists(),
            "{} was created by the failed Create",
            missing.display()
        );
        Ok(())
    });
}

#[test]
fn a_fifo_in_a_directory_others_can_write_is_refused() {
    run("stdout-open-dir", |ctx| {
        let dir = ctx.dir.path().join("open");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let fifo = dir.join("stdout");
        mkfifo(&fifo);
        let out = fifo.display().to_string();
        create_is_refused(
            ctx,
            "c",
            false,
            |r| r.stdout = out,
            "writable by users other",
        )
    });
}

#[test]
fn a_fifo_owned_by_another_user_is_refused() {
    run("stdout-not-root", |ctx| {
        let fifo = ctx.dir.path().join("theirs");
        mkfifo(&fifo);
        std::os::unix::fs::chown(&fifo, Some(65534), Some(65534)).unwrap();
        let out = fifo.display().to_string();
        create_is_refused(ctx, "c", false, |r| r.stdout = out, "owned by uid 65534")
    });
}

#[test]
fn a_file_log_that_is_a_link_is_refused() {
    run("file-log-link", |ctx| {
        let victim = victim(ctx);
        let link = ctx.dir.path().join("log-link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let uri = format!("file://{}", link.display());
        create_is_refused(
            ctx,
            "c",
            false,
            |r| {
                r.stdout = uri.clone();
                r.stderr = uri;
            },
            "a symbolic link",
        )?;
        std::thread::sleep(std::time::Duration::from_millis(300));
        unchanged(&victim)
    });
}

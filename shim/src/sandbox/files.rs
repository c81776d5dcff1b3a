//! The pod's files: /etc/hostname, /etc/hosts, /etc/resolv.conf and the /dev/shm its
//! containers share. containerd's CRI bind-mounts them into every container it creates
//! from fixed places of its own (`<root>/io.containerd.grpc.v1.cri/sandboxes/<id>/` for
//! the files, `<state>/io.containerd.grpc.v1.cri/sandboxes/<id>/shm`), if they exist;
//! for a pause container its pod controller makes them, for a shim's sandbox nobody does.
//!
//! So the shim makes them in its own bundle (`pod/`, and a tmpfs at `shm`) and links
//! them from the CRI's places. The CRI removes those places of sandboxes it does not
//! know when it restarts (a shim's sandbox has no pause container to be known by): the
//! links are then made again when it next asks the sandbox's status, which it does before
//! it creates a container, while the files and the shared tmpfs, in the bundle, stay.
//!
//! The CRI's places are found from the bundle, which containerd makes at
//! `<state>/io.containerd.sandbox.controller.v1.shim/<namespace>/<id>` with a `work` link
//! to the same under `<root>`: when the bundle is elsewhere (not the CRI's sandbox), the
//! files are made but not linked.

use super::spec::{self, PodSpec};
use std::fs;
use std::io;
use std::os::unix::fs::{symlink, DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

const CONTROLLER_DIR: &str = "io.containerd.sandbox.controller.v1.shim";
const CRI_DIR: &str = "io.containerd.grpc.v1.cri";
/// The size of a pod's /dev/shm: the CRI's for a pause container.
const SHM_SIZE: &str = "65536k";

/// The files of one pod, and the links to them.
#[derive(Debug)]
pub struct PodFiles {
    /// The tmpfs the pod's /dev/shm is, when the pod has IPC of its own.
    shm: Option<PathBuf>,
    /// `pod/` in the bundle: hostname, hosts, resolv.conf.
    own: PathBuf,
    /// Link, and what it points to.
    links: Vec<(PathBuf, PathBuf)>,
}

/// The CRI's directories for sandbox `id` whose bundle is `bundle`: (the files', the
/// shm's), or None when the bundle is not where containerd's shim controller puts one.
pub fn cri_dirs(bundle: &Path, id: &str) -> Option<(PathBuf, PathBuf)> {
    let controller_state = bundle.parent()?.parent()?;
    if bundle.file_name()? != id || controller_state.file_name()? != CONTROLLER_DIR {
        return None;
    }
    let work = fs::read_link(bundle.join("work")).ok()?;
    let controller_root = work.parent()?.parent()?;
    if controller_root.file_name()? != CONTROLLER_DIR {
        return None;
    }
    let cri_root = controller_root.parent()?.join(CRI_DIR);
    let cri_state = controller_state.parent()?.join(CRI_DIR);
    if !cri_root.is_dir() && !cri_state.is_dir() {
        return None;
    }
    Some((
        cri_root.join("sandboxes").join(id),
        cri_state.join("sandboxes").join(id),
    ))
}

impl PodFiles {
    /// Makes the pod's files in `bundle` and links them where the CRI looks. On an error
    /// nothing is left.
    pub fn create(bundle: &Path, id: &str, pod: &PodSpec) -> io::Result<PodFiles> {
        let mut files = PodFiles {
            shm: None,
            own: bundle.join("pod"),
            links: Vec::new(),
        };
        match files.fill(bundle, id, pod) {
            Ok(()) => Ok(files),
            Err(e) => {
                files.remove();
                Err(e)
            }
        }
    }

    fn fill(&mut self, bundle: &Path, id: &str, pod: &PodSpec) -> io::Result<()> {
        mkdir(&self.own, 0o755)?;
        let hostname = match pod.hostname.as_str() {
            // The node's name: the pod's UTS namespace, if it has one, started as a copy.
            "" => fs::read_to_string("/proc/sys/kernel/hostname")?
                .trim_end()
                .to_string(),
            name => name.to_string(),
        };
        write(
            &self.own.join("hostname"),
            format!("{hostname}\n").as_bytes(),
        )?;
        write(&self.own.join("hosts"), &read_host("/etc/hosts")?)?;
        let resolv = match &pod.dns {
            Some(dns) => spec::resolv_conf(dns).into_bytes(),
            None => read_host("/etc/resolv.conf")?,
        };
        write(&self.own.join("resolv.conf"), &resolv)?;
        if pod.own_ipc {
            let shm = bundle.join("shm");
            mkdir(&shm, 0o700)?;
            mount_shm(&shm)?;
            self.shm = Some(shm);
        }
        if let Some((files_dir, shm_dir)) = cri_dirs(bundle, id) {
            for name in ["hostname", "hosts", "resolv.conf"] {
                self.links.push((files_dir.join(name), self.own.join(name)));
            }
            if let Some(shm) = &self.shm {
                self.links.push((shm_dir.join("shm"), shm.clone()));
            }
        } else {
            log::info!("{id}: not a sandbox of containerd's CRI: its files are not linked");
        }
        self.relink()
    }

    /// Makes the links the CRI follows, where they are missing.
    pub fn relink(&self) -> io::Result<()> {
        for (link, target) in &self.links {
            if fs::symlink_metadata(link).is_ok() {
                continue;
            }
            if let Some(dir) = link.parent() {
                fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o755)
                    .create(dir)?;
            }
            symlink(target, link).map_err(|e| {
                io::Error::new(e.kind(), format!("linking {}: {e}", link.display()))
            })?;
        }
        Ok(())
    }

    /// Unmounts the pod's /dev/shm (its containers have their own mount of it).
    pub fn release_shm(&mut self) {
        if let Some(shm) = self.shm.take() {
            unmount_shm(&shm);
        }
    }

    /// Removes everything: the shm, the links and their directories, the files.
    pub fn remove(&mut self) {
        self.release_shm();
        for (link, target) in self.links.drain(..) {
            remove_link(&link, &target);
        }
        let _ = fs::remove_dir_all(&self.own);
    }
}

/// Removes `link` if it still points to `target`, and its directory if that is then
/// empty (the CRI's per-sandbox directory, which only the shim's links were in).
pub fn remove_link(link: &Path, target: &Path) {
    if fs::read_link(link).is_ok_and(|t| t == target) {
        let _ = fs::remove_file(link);
    }
    if let Some(dir) = link.parent() {
        let _ = fs::remove_dir(dir);
    }
}

/// For `delete` after a dead shim: the same removal, knowing only the bundle.
pub fn remove_for_bundle(bundle: &Path, id: &str) {
    let shm = bundle.join("shm");
    unmount_shm(&shm);
    let own = bundle.join("pod");
    if let Some((files_dir, shm_dir)) = cri_dirs(bundle, id) {
        for name in ["hostname", "hosts", "resolv.conf"] {
            remove_link(&files_dir.join(name), &own.join(name));
        }
        remove_link(&shm_dir.join("shm"), &shm);
    }
    let _ = fs::remove_dir_all(own);
}

fn mount_shm(shm: &Path) -> io::Result<()> {
    use nix::mount::{mount, MsFlags};
    let flags = MsFlags::MS_NOEXEC | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    let data = format!("mode=1777,size={SHM_SIZE}");
    mount(Some("shm"), shm, Some("tmpfs"), flags, Some(data.as_str())).map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("mounting the pod's /dev/shm at {}: {e}", shm.display()),
        )
    })
}

fn unmount_shm(shm: &Path) {
    // Detached: a process that still has it open (a file, a cwd) must not keep the shim
    // from removing its bundle; the tmpfs goes when the last user does. A path that is
    // no mount (or none at all: a container's bundle) is no error.
    if let Err(e) = crate::sys::mount::unmount_all(shm) {
        log::warn!("unmounting the pod's /dev/shm: {e}");
    }
    let _ = fs::remove_dir(shm);
}

fn mkdir(dir: &Path, mode: u32) -> io::Result<()> {
    match fs::DirBuilder::new().mode(mode).create(dir) {
        Ok(()) => fs::set_permissions(dir, fs::Permissions::from_mode(mode)),
        Err(e) => Err(io::Error::new(
            e.kind(),
            format!("creating {}: {e}", dir.display()),
        )),
    }
}

fn write(path: &Path, data: &[u8]) -> io::Result<()> {
    fs::write(path, data)
        .and_then(|()| fs::set_permissions(path, fs::Permissions::from_mode(0o644)))
        .map_err(|e| io::Error::new(e.kind(), format!("writing {}: {e}", path.display())))
}

fn read_host(path: &str) -> io::Result<Vec<u8>> {
    fs::read(path).map_err(|e| io::Error::new(e.kind(), format!("reading the node's {path}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cris_places_follow_from_the_bundle() {
        let tmp = std::env::temp_dir().join(format!("skiff-files-{}", std::process::id()));
        let state = tmp.join("state");
        let root = tmp.join("root");
        let bundle = state.join(CONTROLLER_DIR).join("k8s.io").join("pod1");
        let work = root.join(CONTROLLER_DIR).join("k8s.io").join("pod1");
        fs::create_dir_all(&bundle).unwrap();
        fs::create_dir_all(&work).unwrap();
        fs::create_dir_all(root.join(CRI_DIR)).unwrap();
        symlink(&work, bundle.join("work")).unwrap();
        assert_eq!(
            cri_dirs(&bundle, "pod1"),
            Some((
                root.join(CRI_DIR).join("sandboxes/pod1"),
                state.join(CRI_DIR).join("sandboxes/pod1")
            ))
        );
        assert_eq!(
            cri_dirs(&bundle, "other"),
            None,
            "the bundle is named by the id"
        );
        assert_eq!(cri_dirs(&tmp, "skiff-files"), None);
        fs::remove_dir_all(&tmp).unwrap();
    }
}

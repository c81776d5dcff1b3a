//! Applying an image layer (a tar stream) onto a mounted snapshot, by the OCI rules:
//! `.wh.NAME` deletes NAME from the layers below, `.wh..wh..opq` hides everything the
//! layers below put in its directory; files keep their modes, owners, xattrs and
//! times; hard links, symlinks, device nodes and FIFOs are made as they are.
//!
//! Every path is resolved inside the root, following symlinks as if the root were `/`,
//! so no entry (`../x`, or a file under a symlink pointing out) can write outside it.

use crate::error::{io, Error, Result};
use std::collections::HashSet;
use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Applies the layer read from `layer` onto `root`. Returns the number of entries.
pub fn apply(root: &Path, layer: impl Read) -> Result<usize> {
    let mut archive = tar::Archive::new(layer);
    let mut created: HashSet<PathBuf> = HashSet::new();
    let mut dirs: Vec<(PathBuf, tar::Header)> = Vec::new();
    let mut count = 0;
    let entries = archive
        .entries()
        .map_err(|e| Error::Corrupt(format!("reading a layer: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::Corrupt(format!("reading a layer: {e}")))?;
        count += 1;
        let raw = entry.path_bytes().into_owned();
        let rel = clean(&raw)?;
        let Some(name) = rel.file_name().map(OsStr::to_os_string) else {
            continue; // the root itself
        };
        let parent_rel = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        let name_bytes = name.as_bytes();
        if name_bytes == OPAQUE.as_bytes() {
            let dir = resolve(root, &parent_rel)?;
            clear_dir(&dir, &parent_rel, &created)?;
            continue;
        }
        if let Some(hidden) = name_bytes.strip_prefix(WHITEOUT.as_bytes()) {
            let target = resolve(root, &parent_rel.join(OsStr::from_bytes(hidden)))?;
            remove_any(&target)?;
            continue;
        }
        let path = resolve(root, &rel)?;
        let header = entry.header().clone();
        let kind = header.entry_type();
        if !kind.is_dir() {
            remove_any(&path)?;
        }
        match kind {
            tar::EntryType::Directory => {
                match path.symlink_metadata() {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_any(&path)?;
                        fs::create_dir(&path)
                            .map_err(|e| io(format!("creating {}", rel.display()), e))?;
                    }
                    Err(_) => fs::create_dir(&path)
                        .map_err(|e| io(format!("creating {}", rel.display()), e))?,
                }
                dirs.push((path.clone(), header.clone()));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let mut f = fs::File::create(&path)
                    .map_err(|e| io(format!("creating {}", rel.display()), e))?;
                std::io::copy(&mut entry, &mut f).map_err(|e| {
                    Error::Corrupt(format!("reading {} from a layer: {e}", rel.display()))
                })?;
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    Error::Corrupt(format!("symlink {} has no target", rel.display()))
                })?;
                std::os::unix::fs::symlink(OsStr::from_bytes(&target), &path)
                    .map_err(|e| io(format!("creating symlink {}", rel.display()), e))?;
            }
            tar::EntryType::Link => {
                let target = entry.link_name_bytes().ok_or_else(|| {
                    Error::Corrupt(format!("hard link {} has no target", rel.display()))
                })?;
                let target = resolve(root, &clean(&target)?)?;
                fs::hard_link(&target, &path)
                    .map_err(|e| io(format!("linking {}", rel.display()), e))?;
            }
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let kind_bits = match kind {
                    tar::EntryType::Char => libc::S_IFCHR,
                    tar::EntryType::Block => libc::S_IFBLK,
                    _ => libc::S_IFIFO,
                };
                let major = header.device_major().ok().flatten().unwrap_or(0);
                let minor = header.device_minor().ok().flatten().unwrap_or(0);
                let mode = header.mode().unwrap_or(0o644) & 0o7777;
                let c = cpath(&path)?;
                // SAFETY: a NUL-terminated path.
                let rc = unsafe {
                    libc::mknod(c.as_ptr(), kind_bits | mode, libc::makedev(major, minor))
                };
                if rc != 0 {
                    return Err(io(
                        format!("creating device node {}", rel.display()),
                        std::io::Error::last_os_error(),
                    ));
                }
            }
            other => {
                return Err(Error::Corrupt(format!(
                    "{}: unsupported tar entry type {other:?}",
                    rel.display()
                )));
            }
        }
        if let Ok(Some(exts)) = entry.pax_extensions() {
            for ext in exts.flatten() {
                if let Some(name) = ext.key_bytes().strip_prefix(b"SCHILY.xattr.") {
                    set_xattr(&path, name, ext.value_bytes())?;
                }
            }
        }
        if !kind.is_dir() {
            set_metadata(&path, &header, kind)?;
        }
        created.insert(rel);
    }
    // Directories last, deepest first: their times and modes are not disturbed by the
    // entries written into them.
    for (path, header) in dirs.iter().rev() {
        set_metadata(path, header, tar::EntryType::Directory)?;
    }
    Ok(count)
}

/// A tar path made relative and free of `.` and `..` (which are refused).
fn clean(raw: &[u8]) -> Result<PathBuf> {
    let mut out = PathBuf::new();
    for c in Path::new(OsStr::from_bytes(raw)).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(Error::Corrupt(format!(
                    "layer entry {:?} points outside the root",
                    String::from_utf8_lossy(raw)
                )))
            }
        }
    }
    Ok(out)
}

/// `rel` inside `root`, with symlinks in its parent directories followed as if `root`
/// were `/`; the last component is not followed.
pub fn resolve(root: &Path, rel: &Path) -> Result<PathBuf> {
    let mut pending: Vec<OsString> = rel
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_os_string()),
            _ => None,
        })
        .collect();
    let mut stack: Vec<OsString> = Vec::new();
    let mut hops = 0;
    while let Some(part) = pending.pop() {
        if part == ".." {
            stack.pop();
            continue;
        }
        if part == "." {
            continue;
        }
        stack.push(part);
        if pending.is_empty() {
            break;
        }
        let here: PathBuf = std::iter::once(root.as_os_str().to_os_string())
            .chain(stack.iter().cloned())
            .collect();
        if let Ok(target) = fs::read_link(&here) {
            hops += 1;
            if hops > 40 {
                return Err(Error::Corrupt(format!(
                    "too many symlinks under {}",
                    rel.display()
                )));
            }
            stack.pop();
            if target.is_absolute() {
                stack.clear();
            }
            for c in target.components().rev() {
                match c {
                    Component::Normal(n) => pending.push(n.to_os_string()),
                    Component::ParentDir => pending.push(OsString::from("..")),
                    _ => {}
                }
            }
        }
    }
    Ok(std::iter::once(root.as_os_str().to_os_string())
        .chain(stack)
        .collect())
}

fn remove_any(path: &Path) -> Result<()> {
    match path.symlink_metadata() {
        Ok(m) if m.is_dir() => {
            fs::remove_dir_all(path).map_err(|e| io(format!("removing {}", path.display()), e))
        }
        Ok(_) => fs::remove_file(path).map_err(|e| io(format!("removing {}", path.display()), e)),
        Err(_) => Ok(()),
    }
}

/// Empties `dir` of what lower layers put there, keeping what this layer made.
fn clear_dir(dir: &Path, rel: &Path, created: &HashSet<PathBuf>) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        if !created.contains(&rel.join(e.file_name())) {
            remove_any(&e.path())?;
        }
    }
    Ok(())
}

fn cpath(p: &Path) -> Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| Error::Corrupt("a path holds a NUL byte".into()))
}

fn set_xattr(path: &Path, name: &[u8], value: &[u8]) -> Result<()> {
    let c = cpath(path)?;
    let n =
        CString::new(name).map_err(|_| Error::Corrupt("an xattr name holds a NUL byte".into()))?;
    // SAFETY: NUL-terminated path and name, value pointer and length from one slice.
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr() as *const libc::c_void,
            value.len(),
            0,
        )
    };
    if rc != 0 {
        let e = std::io::Error::last_os_error();
        // Filesystems without user xattrs (or trusted.* without privilege) refuse; the
        // file itself is still right.
        if !matches!(e.raw_os_error(), Some(libc::ENOTSUP) | Some(libc::EPERM)) {
            return Err(io(format!("setting xattr on {}", path.display()), e));
        }
    }
    Ok(())
}

/// Owner, then mode (chown clears set-id bits), then times.
fn set_metadata(path: &Path, h: &tar::Header, kind: tar::EntryType) -> Result<()> {
    let c = cpath(path)?;
    let uid = h.uid().unwrap_or(0) as libc::uid_t;
    let gid = h.gid().unwrap_or(0) as libc::gid_t;
    // SAFETY: a NUL-terminated path.
    if unsafe { libc::lchown(c.as_ptr(), uid, gid) } != 0 {
        return Err(io(
            format!("chown {}", path.display()),
            std::io::Error::last_os_error(),
        ));
    }
    if kind != tar::EntryType::Symlink {
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .map_err(|e| io(format!("chmod {}", path.display()), e))?;
    }
    let mtime = h.mtime().unwrap_or(0) as libc::time_t;
    let times = [
        libc::timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
        libc::timespec {
            tv_sec: mtime,
            tv_nsec: 0,
        },
    ];
    // SAFETY: a NUL-terminated path and two timespecs.
    unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, tar::EntryType, &[u8], &str)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_mode(if kind.is_dir() { 0o755 } else { 0o644 });
            h.set_size(data.len() as u64);
            if !link.is_empty() {
                h.set_link_name(link).unwrap();
            }
            b.append_data(&mut h, path, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_opaque_dirs_links_and_escapes() {
        use tar::EntryType::*;
        let root = std::env::temp_dir().join(format!("skiff-unpack-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        apply(
            &root,
            &layer(&[
                ("etc/", Directory, b"", ""),
                ("etc/motd", Regular, b"hi\n", ""),
                ("data/", Directory, b"", ""),
                ("data/a", Regular, b"a", ""),
                ("data/b", Regular, b"b", ""),
                ("lnk", Symlink, b"", "/etc"),
                ("hard", Link, b"", "etc/motd"),
            ])[..],
        )
        .unwrap();
        assert_eq!(fs::read_to_string(root.join("hard")).unwrap(), "hi\n");
        apply(
            &root,
            &layer(&[
                ("etc/.wh.motd", Regular, b"", ""),
                ("data/.wh..wh..opq", Regular, b"", ""),
                ("data/c", Regular, b"c", ""),
                // Through the absolute symlink: must land in root/etc, not /etc.
                ("lnk/issue", Regular, b"x", ""),
            ])[..],
        )
        .unwrap();
        assert!(!root.join("etc/motd").exists());
        let mut names: Vec<_> = fs::read_dir(root.join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, ["c"]);
        assert_eq!(fs::read_to_string(root.join("etc/issue")).unwrap(), "x");
        let mut evil = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_entry_type(Regular);
        let name = b"../evil";
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        evil.append(&h, &b"x"[..]).unwrap();
        let err = apply(&root, &evil.into_inner().unwrap()[..]).unwrap_err();
        assert!(err.to_string().contains("outside the root"), "{err}");
        fs::remove_dir_all(&root).unwrap();
    }
}

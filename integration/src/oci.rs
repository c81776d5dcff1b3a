//! OCI image archives made in the test, entry by entry, for what the shell builder
//! cannot express: hostile layers (raw names, symlinks before directories, links to
//! links), many layers, indexes nested deep, blobs left out on purpose, and large
//! entries of zeros written as holes so a multi-gigabyte archive costs no disk. Layers
//! entry by entry come from the test support's `layer_tar`.

use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;

pub use skiff_test_support::layer_tar::{layer, Entry};

/// A layer holding a directory tree, as `tar -C dir .` would.
pub fn layer_of_dir(dir: &Path) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all(".", dir).unwrap();
    b.into_inner().unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn digest(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// An OCI image layout to write as an archive.
#[derive(Default)]
pub struct Image {
    pub name: String,
    /// Uncompressed tars (their diff ids), each stored gzipped if `gzip`.
    pub layers: Vec<Vec<u8>>,
    pub gzip: bool,
    /// The manifest behind this many indexes, each naming the next.
    pub nested_indexes: usize,
    /// Blobs named but not put in the archive (by digest).
    pub left_out: Vec<String>,
    /// Entries outside blobs/ of this many bytes of zeros each, written as holes.
    pub zero_files: (usize, u64),
    /// Extra bytes in the config (to make it large).
    pub config_padding: usize,
    /// Extra bytes in the manifest (an annotation).
    pub manifest_padding: usize,
}

/// An image's blobs (`Image::parts`).
pub struct Parts {
    pub layers: Vec<Vec<u8>>,
    pub config: Vec<u8>,
    pub manifest: Vec<u8>,
}

impl Image {
    /// The image's blobs as a registry holds them: layers (stored form, media type),
    /// config, manifest.
    pub fn parts(&self) -> Parts {
        let mut layers = Vec::new();
        let mut layer_descs = Vec::new();
        let mut diff_ids = Vec::new();
        for l in &self.layers {
            diff_ids.push(digest(l));
            let stored = if self.gzip { gzip(l) } else { l.clone() };
            let media = if self.gzip {
                "application/vnd.oci.image.layer.v1.tar+gzip"
            } else {
                "application/vnd.oci.image.layer.v1.tar"
            };
            layer_descs.push(serde_json::json!({"mediaType": media, "digest": digest(&stored), "size": stored.len()}));
            layers.push(stored);
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": arch(), "os": "linux",
            "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "padding": "x".repeat(self.config_padding),
        }))
        .unwrap();
        let mut manifest = serde_json::json!({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(&config), "size": config.len()},
            "layers": layer_descs,
        });
        if self.manifest_padding > 0 {
            manifest["annotations"] =
                serde_json::json!({"padding": "x".repeat(self.manifest_padding)});
        }
        let manifest = serde_json::to_vec(&manifest).unwrap();
        Parts {
            layers,
            config,
            manifest,
        }
    }

    /// Writes the archive to `out`; returns (manifest digest, config digest, layer digests).
    pub fn write(&self, out: &Path) -> (String, String, Vec<String>) {
        let Parts {
            layers: mut blobs,
            config,
            manifest,
        } = self.parts();
        let layer_digests: Vec<String> = blobs.iter().map(|b| digest(b)).collect();
        let (config_digest, manifest_digest) = (digest(&config), digest(&manifest));
        let mut top = serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": manifest_digest, "size": manifest.len()});
        blobs.push(config);
        blobs.push(manifest);
        for _ in 0..self.nested_indexes {
            let index =
                serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [top]}))
                    .unwrap();
            top = serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest(&index), "size": index.len()});
            blobs.push(index);
        }
        top["annotations"] = serde_json::json!({"io.containerd.image.name": self.name});
        let index =
            serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "manifests": [top]}))
                .unwrap();
        let mut file = File::create(out).unwrap();
        self.write_zero_files(&mut file);
        let mut b = tar::Builder::new(file);
        let mut add = |name: &str, data: &[u8]| {
            let mut h = tar::Header::new_ustar();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, data).unwrap();
        };
        add("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        add("index.json", &index);
        for blob in &blobs {
            let d = digest(blob);
            if !self.left_out.contains(&d) {
                add(
                    &format!("blobs/sha256/{}", d.trim_start_matches("sha256:")),
                    blob,
                );
            }
        }
        b.finish().unwrap();
        (manifest_digest, config_digest, layer_digests)
    }

    /// Headers written, data skipped: the file has holes where the zeros are.
    fn write_zero_files(&self, file: &mut File) {
        let (count, size) = self.zero_files;
        for i in 0..count {
            let mut h = tar::Header::new_ustar();
            h.set_path(format!("extra/zeros-{i:05}")).unwrap();
            h.set_size(size);
            h.set_mode(0o644);
            h.set_cksum();
            file.write_all(h.as_bytes()).unwrap();
            let padded = size.div_ceil(512) * 512;
            file.seek(SeekFrom::Current(padded as i64)).unwrap();
        }
        let end = file.stream_position().unwrap();
        file.set_len(end).unwrap();
    }
}

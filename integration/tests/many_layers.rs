//! An image of 120 layers under containerd: its snapshotter hands the shim an overlay
//! mount whose `lowerdir` names 120 directories, several pages of mount options, more
//! than one mount(2) takes. The shim must mount it all the same (as containerd's Go shim
//! does), with either driver, under every containerd.

use skiff_integration::containerd::{shim_binary, stderr, stdout, Containerd};
use skiff_integration::oci::{layer, layer_of_dir, Entry, Image};
use skiff_test_support::bundle::{busybox_rootfs, TempDir};
use tar::EntryType::{Directory, Regular};

const LAYERS: usize = 120;

/// busybox, then one layer per file `/layers/NNN`.
fn many_layer_image(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    let base = dir.join("base");
    busybox_rootfs(&base).unwrap();
    let mut layers = vec![layer_of_dir(&base)];
    for i in 1..LAYERS {
        let path = format!("layers/{i:03}");
        layers.push(layer(&[
            Entry::new("layers/", Directory),
            Entry::new(&path, Regular).data(path.as_bytes()),
        ]));
    }
    let archive = dir.join("many.tar");
    Image {
        name: name.into(),
        layers,
        gzip: true,
        ..Default::default()
    }
    .write(&archive);
    archive
}

#[test]
fn a_container_of_a_120_layer_image_runs() {
    let cd = Containerd::start();
    let tmp = TempDir::new("skiff-many-layers").unwrap();
    let name = "example.com/many-layers:1";
    let archive = many_layer_image(tmp.path(), name);
    let out = cd.ctr(&["images", "import", &archive.to_string_lossy()]);
    assert!(out.status.success(), "ctr images import: {}", stderr(&out));
    let shim = shim_binary().to_string_lossy().into_owned();
    let out = cd.ctr(&[
        "run",
        "--rm",
        "--runtime",
        &shim,
        name,
        "many",
        "sh",
        "-c",
        "ls /layers | wc -l; cat /layers/001 /layers/119",
    ]);
    assert!(out.status.success(), "ctr run: {}", stderr(&out));
    assert_eq!(
        stdout(&out).trim(),
        format!("{}\nlayers/001layers/119", LAYERS - 1)
    );
}

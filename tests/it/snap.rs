//! The one way integration tests write insta snapshots: into the workspace's top-level
//! `snapshots/` folder, one subfolder per feature, with nothing machine-specific in them.
//!
//! insta's default puts snapshots next to the test file; the project keeps them at the top
//! level so that `tree .` shows them as an artifact of their own. `Settings::set_snapshot_path`
//! is how insta's maintainer recommends moving them, and binding it in one helper keeps
//! every test agreeing on the place (`cargo insta review` finds them through the pending
//! `.snap.new` files either way).

use std::path::Path;

/// Checks `text` against `snapshots/<group>/<name>.snap`.
///
/// `input` names the file the text was made from, relative to the workspace root, so that a
/// reviewer can open it next to the snapshot.
#[track_caller]
pub fn check(group: &str, name: &str, input: Option<&Path>, text: &str) {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("snapshots")
            .join(group),
    );
    settings.set_prepend_module_to_snapshot(false);
    // The expression would always read `text`; the input file says more.
    settings.set_omit_expression(true);
    if let Some(input) = input {
        settings.set_input_file(input);
    }
    settings.bind(|| insta::assert_snapshot!(name.to_string(), text));
}

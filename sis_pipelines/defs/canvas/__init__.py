"""Canvas provisioning assets: mapping, guarded delta and package, upload and tracking."""

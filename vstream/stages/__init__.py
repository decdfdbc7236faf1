"""The stream's stages, in the order a frame takes them: decode → pyramid → (schedule) → infer → smooth → reconstruct → encode."""

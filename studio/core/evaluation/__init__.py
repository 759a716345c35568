"""The privacy/utility study against naive de-identification, and each component's check."""

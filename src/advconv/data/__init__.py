"""Images in: sources (folders, tarballs, torchvision), the decoded-array cache, the augmentation pipelines."""

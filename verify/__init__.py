"""verify: post-deploy checks that tell, with measured figures, whether a deployed stack works."""

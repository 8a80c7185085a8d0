import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's C++ start-up chatter out of the output

from training.cli import main

if __name__ == "__main__":  # training.scene_samples starts worker processes that import this module
    sys.exit(main())

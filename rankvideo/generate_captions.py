"""`python -m rankvideo.generate_captions`: the original release's captioning command."""

from rankvideo.captions import main

if __name__ == "__main__":
    main()

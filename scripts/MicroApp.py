"""The installed app's entry point (PyInstaller): ``MicroApp`` opens the window,
``MicroApp --selftest`` checks the installation, any ``micro-app`` command works too."""

import multiprocessing

if __name__ == "__main__":
    multiprocessing.freeze_support()  # first: a frozen child process must not start the app
    from micro_app.cli import main

    raise SystemExit(main())

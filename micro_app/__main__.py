from micro_app.cli import main

raise SystemExit(main())

from sloguard.cli import main

raise SystemExit(main())

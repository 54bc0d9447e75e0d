from pyctr.cli import main

raise SystemExit(main())

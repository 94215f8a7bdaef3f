from pals_core.cli import main

main()

from timbre.cli import main

main()

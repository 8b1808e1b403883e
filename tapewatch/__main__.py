from tapewatch.cli import main

main()

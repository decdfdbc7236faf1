from vstream.cli import main

main()

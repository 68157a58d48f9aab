from sladeck.cli import main

main()

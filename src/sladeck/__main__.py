from sladeck.launch import main

main()

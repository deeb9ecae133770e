"""The CloudFormation template, installed as package data of mycli_magic (mycli_magic._template)."""

<?xml version="1.0"?>
<!-- A lab order posted as XML -> HL7 v2.5.1 ORM^O01 (text output, segments ended by CR).
     Values are written as they come: the xml-lab-order channel's xpath step has already
     required the MRN; free text must not hold HL7 delimiters (| ^ ~ \ &). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:o="urn:example:orders">
  <xsl:output method="text" encoding="UTF-8"/>
  <xsl:param name="control_id"/>
  <xsl:param name="now"/>
  <xsl:template match="/o:LabOrder">
    <xsl:text>MSH|^~\&amp;|ORDERAPP|CLINIC|LAB|GOODHEALTH|</xsl:text>
    <xsl:value-of select="$now"/>
    <xsl:text>||ORM^O01^ORM_O01|</xsl:text><xsl:value-of select="$control_id"/>
    <xsl:text>|P|2.5.1&#13;</xsl:text>
    <xsl:text>PID|1||</xsl:text><xsl:value-of select="o:Patient/o:MRN"/>
    <xsl:text>^^^GOODHEALTH^MR||</xsl:text><xsl:value-of select="o:Patient/o:Family"/>
    <xsl:text>^</xsl:text><xsl:value-of select="o:Patient/o:Given"/>
    <xsl:text>||</xsl:text><xsl:value-of select="translate(o:Patient/o:BirthDate, '-', '')"/>
    <xsl:text>&#13;</xsl:text>
    <xsl:for-each select="o:Test">
      <xsl:text>ORC|NW|</xsl:text><xsl:value-of select="../@id"/><xsl:text>-</xsl:text>
      <xsl:value-of select="position()"/><xsl:text>&#13;</xsl:text>
      <xsl:text>OBR|</xsl:text><xsl:value-of select="position()"/><xsl:text>|</xsl:text>
      <xsl:value-of select="../@id"/><xsl:text>-</xsl:text><xsl:value-of select="position()"/>
      <xsl:text>||</xsl:text><xsl:value-of select="@code"/><xsl:text>^</xsl:text>
      <xsl:value-of select="."/><xsl:text>^L&#13;</xsl:text>
    </xsl:for-each>
  </xsl:template>
</xsl:stylesheet>
